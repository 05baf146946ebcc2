//! Diagnostics for dialog scripts and routing files.
//!
//! Administrators are not programmers, so every diagnostic carries the exact
//! place (`file:line:col`), what is wrong and how to fix it, in Japanese and
//! English. The compiler collects all of them instead of stopping at the first,
//! so one `dialogs check` run shows every problem at once.

use crate::script::Lang;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A 1-based position in a source file. Line 0 means "the whole file".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Loc {
    pub line: u64,
    pub col: u64,
}

impl Loc {
    pub fn new(line: u64, col: u64) -> Self {
        Loc { line, col }
    }
}

impl From<&serde_saphyr::Location> for Loc {
    fn from(l: &serde_saphyr::Location) -> Self {
        Loc {
            line: l.line(),
            col: l.column(),
        }
    }
}

impl<T> From<&serde_saphyr::Spanned<T>> for Loc {
    fn from(s: &serde_saphyr::Spanned<T>) -> Self {
        Loc::from(&s.referenced)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub loc: Loc,
    /// A stable short name (`unknown-node`, `bad-regex`, …) that tests and
    /// documentation refer to.
    pub code: &'static str,
    pub en: String,
    pub ja: String,
    pub hint_en: String,
    pub hint_ja: String,
}

impl Diagnostic {
    /// Renders the diagnostic in one language, compiler style.
    pub fn render(&self, lang: Lang) -> String {
        let (sev, msg, hint, hint_word) = match lang {
            Lang::Ja => (
                match self.severity {
                    Severity::Error => "エラー",
                    Severity::Warning => "警告",
                },
                &self.ja,
                &self.hint_ja,
                "対処",
            ),
            Lang::En => (
                match self.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                &self.en,
                &self.hint_en,
                "hint",
            ),
        };
        let mut s = format!(
            "{}:{}:{}: {}[{}]: {}",
            self.file, self.loc.line, self.loc.col, sev, self.code, msg
        );
        if !hint.is_empty() {
            s.push_str(&format!("\n  {hint_word}: {hint}"));
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Lang::En))
    }
}

/// Collects diagnostics for one file.
#[derive(Debug, Default)]
pub struct Diags {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

/// Bilingual text: (english, japanese).
pub type Bi = (String, String);

impl Diags {
    pub fn new(file: impl Into<String>) -> Self {
        Diags {
            file: file.into(),
            items: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        severity: Severity,
        loc: impl Into<Loc>,
        code: &'static str,
        msg: Bi,
        hint: Bi,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            loc: loc.into(),
            code,
            en: msg.0,
            ja: msg.1,
            hint_en: hint.0,
            hint_ja: hint.1,
        });
    }

    pub fn error(&mut self, loc: impl Into<Loc>, code: &'static str, msg: Bi, hint: Bi) {
        self.push(Severity::Error, loc, code, msg, hint)
    }

    pub fn warn(&mut self, loc: impl Into<Loc>, code: &'static str, msg: Bi, hint: Bi) {
        self.push(Severity::Warning, loc, code, msg, hint)
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Builds a bilingual pair from two `format!` argument lists.
#[macro_export]
macro_rules! bi {
    ($en:expr, $ja:expr $(,)?) => {
        (String::from($en), String::from($ja))
    };
}

/// Sorts diagnostics by file and position and drops exact duplicates (the
/// routing file is compiled once per language and would otherwise report
/// each of its problems twice).
pub fn normalize(mut items: Vec<Diagnostic>) -> Vec<Diagnostic> {
    items.sort_by(|a, b| {
        (&a.file, a.loc, a.severity, a.code).cmp(&(&b.file, b.loc, b.severity, b.code))
    });
    items.dedup_by(|a, b| a.file == b.file && a.loc == b.loc && a.code == b.code && a.en == b.en);
    items
}

/// "Did you mean `c`?" in both languages (empty when there is no
/// suggestion), to put before a hint.
pub fn did_you_mean(c: Option<&str>) -> Bi {
    match c {
        Some(c) => (
            format!("did you mean `{c}`? "),
            format!("`{c}` のことですか？"),
        ),
        None => Bi::default(),
    }
}

/// The closest candidate to `word` by edit distance, for "did you mean".
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word.chars().count()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Translates a position inside a template string into a position in the
/// YAML file. `at` is where the scalar starts in the file; for a block
/// scalar (`|` or `>`), the text starts on the following line at the
/// indentation of that line.
pub fn template_pos(source: &str, at: Loc, tline: usize, tcol: usize) -> Loc {
    let lines: Vec<&str> = source.lines().collect();
    let Some(first) = lines.get((at.line as usize).saturating_sub(1)) else {
        return at;
    };
    let start_char = first.chars().nth((at.col as usize).saturating_sub(1));
    // The parser may point at the block indicator (`|`, `>`) or at the
    // first character of the block's content; handle both.
    let after_indicator = at.line >= 2
        && lines
            .get(at.line as usize - 2)
            .map(|l| {
                l.trim_end()
                    .trim_end_matches(['-', '+', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
                    .ends_with(['|', '>'])
            })
            .unwrap_or(false);
    match start_char {
        Some('|') | Some('>') => {
            let line_no = at.line as usize + tline; // tline is 1-based
            let indent = lines
                .get(line_no - 1)
                .map(|l| l.chars().take_while(|c| *c == ' ').count())
                .unwrap_or(0);
            Loc::new(line_no as u64, (indent + tcol) as u64)
        }
        _ if after_indicator => Loc::new(at.line + tline as u64 - 1, at.col + tcol as u64 - 1),
        Some('"') | Some('\'') if tline <= 1 => Loc::new(at.line, at.col + tcol as u64),
        _ if tline <= 1 => Loc::new(at.line, at.col + tcol as u64 - 1),
        _ => Loc::new(at.line + tline as u64 - 1, tcol as u64),
    }
}
