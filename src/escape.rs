//! Escaping of owner text for the medium it is shown in.
//!
//! Owner text is stored exactly as typed (invariant 5) and made safe only
//! where it is shown, because what is dangerous depends on the medium: a
//! terminal interprets ESC sequences and shows bidi overrides, a Markdown
//! file is read through a renderer that turns `<img onerror=…>` and
//! `[click](…)` into live HTML and links, and Discord pings everyone for
//! `@everyone`. Each medium therefore has one function here, and the one
//! hostile corpus in `tests/escape/hostile.txt` is run against all of them
//! (see the tests below), so a new hostile case is checked everywhere at
//! once.
//!
//! - [`terminal`]: control characters (C0 but newline and tab, DEL, C1)
//!   become visible Unicode control pictures or `<U+XXXX>`, and bidi
//!   controls become `<U+XXXX>`, so nothing moves the cursor, recolours
//!   the screen or reorders what follows. Zero-width joiners and variation
//!   selectors are kept, so emoji sequences and Japanese text are intact.
//! - [`inbox_markdown`]: for the Markdown files of the local inbox, which
//!   are read raw or through a Markdown/HTML renderer. HTML's `<`, `>` and
//!   `&` become entities, Markdown punctuation is backslash-escaped, markers
//!   that act only at the start of a line (headings, lists, quotes, numbered
//!   lists, setext underlines) are escaped there, and an `@` that does not
//!   follow an e-mail address's local part is written as `&#64;` so
//!   renderers that know mentions do not ping. An e-mail address keeps its
//!   plain `@`, so staff can copy it.
//!   [`inbox_line`] is the same for one-line places (the `#` title).
//! - [`discord`]: Discord markdown (the escaping the bot always used), plus
//!   the terminal treatment of control and bidi characters.
//!
//! - [`slack`]: Slack mrkdwn: `&`, `<` and `>` as entities (Slack's own
//!   rule), so `<!channel>`, `<!here>`, `<@U…>` and `<url|text>` are text;
//!   a bare `scheme://` and a word-initial `@` broken by a word joiner so
//!   neither links nor pings; controls as for the terminal.
//!
//! # Adding a medium
//!
//! A new medium gets a function here that starts from
//! [`neutralize_controls`], a line in [`MEDIA`] and a checker in the test
//! `every_medium_defuses_the_hostile_corpus` saying what must not survive
//! in its output; the corpus then runs against it with the others.

/// An escaping function: owner text in, text safe for one medium out.
pub type Escaper = fn(&str) -> String;

/// A medium and its escaping function, for code (and tests) that must
/// treat every medium alike.
pub const MEDIA: &[(&str, Escaper)] = &[
    ("terminal", terminal),
    ("inbox_markdown", inbox_markdown),
    ("inbox_line", inbox_line),
    ("discord", discord),
    ("slack", slack),
];

/// Characters that reorder or hide the text around them: the bidi
/// embeddings, overrides and isolates, and the directional marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters a medium must never receive raw: control characters (but
/// newline and tab), DEL, the C1 controls (U+0080–U+009F, among them the
/// one-byte CSI U+009B), bidi controls and the Unicode line and paragraph
/// separators (which some terminals treat as a newline the text did not
/// have).
fn is_hazard(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || is_bidi_control(c)
        || c == '\u{2028}'
        || c == '\u{2029}'
}

/// Shows control and bidi characters visibly instead of letting them act:
/// C0 controls and DEL as their Unicode control pictures (ESC as `␛`),
/// anything else as `<U+XXXX>`. Newlines and tabs are kept; so are the
/// zero-width joiner and variation selectors, which emoji need.
pub fn neutralize_controls(s: &str) -> String {
    if !s.chars().any(is_hazard) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_hazard(c) {
            out.push(c);
        } else if (c as u32) < 0x20 {
            // U+2400..U+241F are the pictures of C0 controls.
            out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?'));
        } else if c == '\u{7F}' {
            out.push('\u{2421}');
        } else {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
    }
    out
}

/// Owner text for a terminal (chat output, `my-data`, `cases`).
pub fn terminal(s: &str) -> String {
    neutralize_controls(s)
}

/// Owner text on one line of a terminal: also newlines and tabs shown as
/// their pictures, for places like a list row.
pub fn terminal_line(s: &str) -> String {
    neutralize_controls(s)
        .replace('\n', "\u{2424}")
        .replace('\t', " ")
}

/// Owner text for a Markdown file of the local inbox: it reads as the same
/// text raw and rendered, and no renderer makes HTML, a link, an image, a
/// heading or a mention of it.
pub fn inbox_markdown(s: &str) -> String {
    let s = neutralize_controls(s);
    let mut out = String::with_capacity(s.len() + 16);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        markdown_line(line, &mut out);
    }
    out
}

/// Like [`inbox_markdown`] for a place that holds one line (a heading):
/// line breaks become spaces, so owner text cannot end the heading and
/// start a block of its own.
pub fn inbox_line(s: &str) -> String {
    let one = s.replace(['\r', '\n', '\u{2028}', '\u{2029}'], " ");
    inbox_markdown(&one)
}

fn markdown_line(line: &str, out: &mut String) {
    let mut at_start = true;
    let mut prev: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '|' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '-' | '+' | '=' if at_start => {
                out.push('\\');
                out.push(c);
            }
            // "1. " or "1) " at the start of a line is a numbered list.
            d if at_start && d.is_ascii_digit() => {
                out.push(d);
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_digit() {
                        out.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if let Some(&n) = chars.peek() {
                    if n == '.' || n == ')' {
                        out.push('\\');
                        out.push(n);
                        chars.next();
                    }
                }
                prev = Some('0');
                at_start = false;
                continue;
            }
            // An e-mail address has its local part before the `@` (ASCII
            // letters, digits and `.`, `_`, `+`, `-`); anything else before
            // it (nothing, a space, 「：」, 「「」, a kanji) may start a
            // mention.
            '@' if !prev.is_some_and(|p| {
                p.is_ascii_alphanumeric() || matches!(p, '.' | '_' | '+' | '-')
            }) =>
            {
                out.push_str("&#64;")
            }
            c => out.push(c),
        }
        // Leading spaces and the ideographic space keep a line "at start".
        at_start = at_start && (c == ' ' || c == '\u{3000}' || c == '\t');
        prev = Some(c);
    }
}

/// Owner text for Discord: markdown escaped and mentions defused, as the
/// bot always did (`allowed_mentions` on every message is the real guard
/// against pings; this keeps the text looking like what the owner typed),
/// and control and bidi characters shown visibly.
pub fn discord(s: &str) -> String {
    let s = neutralize_controls(s);
    let mut out = String::with_capacity(s.len() + 8);
    let mut at_line_start = true;
    for c in s.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '-' | '+' if at_line_start => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                // A zero-width space after '@' stops @everyone / @here.
                out.push('@');
                out.push('\u{200B}');
            }
            _ => out.push(c),
        }
        at_line_start = c == '\n' || (at_line_start && c == ' ');
    }
    out
}

/// U+2060 WORD JOINER: invisible, and enough to stop Slack from seeing a
/// link scheme or a mention word.
const WORD_JOINER: char = '\u{2060}';

/// Owner text for Slack mrkdwn (messages, section blocks). Slack reads
/// `<…>` as a mention, a special command (`<!channel>`, `<!here>`) or a
/// link, and asks for `&`, `<` and `>` to be sent as `&amp;`, `&lt;` and
/// `&gt;`; that alone makes every such control text. Slack also turns a
/// bare `https://…` into a link and (with `link_names`) `@channel` into a
/// ping, so a word joiner goes after the `:` of `://` and after a
/// word-initial `@`. Formatting characters (`*`, `_`, `~`, `` ` ``) have no
/// escape in mrkdwn and cannot link or ping, so they are left as typed.
pub fn slack(s: &str) -> String {
    let s = neutralize_controls(s);
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            ':' if chars.peek() == Some(&'/') => {
                out.push(':');
                out.push(WORD_JOINER);
            }
            '@' if prev.is_none_or(|p| !p.is_alphanumeric()) => {
                out.push('@');
                out.push(WORD_JOINER);
            }
            c => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// Reverses [`slack`]'s entities for places that show text as is (Block
/// Kit `plain_text`: button labels, select options, modal titles), which
/// would otherwise show `&lt;`. The word joiners stay: they are invisible
/// and keep a label from linking. Slack does not read mentions in
/// `plain_text`, but a word joiner also goes after `<` before `!` and `#`,
/// so no special mention (`<!channel>`) or channel link stands in the
/// payload as typed, wherever Slack might show it (notifications, a client
/// that reads it differently).
pub fn slack_plain(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("<!", "<\u{2060}!")
        .replace("<#", "<\u{2060}#")
}

/// Makes pretty-printed JSON safe for a terminal without changing what it
/// means: characters `is_hazard` names can only stand inside JSON
/// strings (serde_json already writes C0 controls as `\u00XX`), so writing
/// them as `\uXXXX` escapes keeps the document valid and its values exact.
pub fn json_for_terminal(json: &str) -> String {
    if !json.chars().any(is_hazard) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_hazard(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hostile corpus: one case a line, `\n`, `\t`, `\e` and `\u{…}`
    /// written as escapes so the file itself stays readable.
    fn corpus() -> Vec<String> {
        let text = include_str!("../tests/escape/hostile.txt");
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with("##"))
            .map(unescape)
            .collect()
    }

    fn unescape(l: &str) -> String {
        let mut out = String::new();
        let mut it = l.chars().peekable();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('e') => out.push('\u{1b}'),
                Some('\\') => out.push('\\'),
                Some('u') => {
                    assert_eq!(it.next(), Some('{'), "bad escape in corpus line {l}");
                    let hex: String = it.by_ref().take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                other => panic!("bad escape {other:?} in corpus line {l}"),
            }
        }
        out
    }

    fn no_hazard(medium: &str, input: &str, out: &str) {
        assert!(
            !out.chars().any(is_hazard),
            "{medium}: a control or bidi character survived in {out:?} (from {input:?})"
        );
    }

    /// Markdown that would do something when rendered: HTML tags, links,
    /// images, code spans, headings and other line-start markers, and
    /// unescaped mentions. Checks the escaped text by scanning it the way
    /// a CommonMark renderer would see each character.
    fn markdown_is_inert(medium: &str, input: &str, out: &str, one_line: bool) {
        for l in out.split('\n') {
            let t = l.trim_start_matches([' ', '\u{3000}']);
            let d = t.chars().take_while(|c| c.is_ascii_digit()).count();
            assert!(
                !(d > 0 && matches!(t[d..].chars().next(), Some('.') | Some(')'))),
                "{medium}: a numbered-list marker in {out:?} (from {input:?})"
            );
        }
        let mut escaped = false;
        let mut at_start = true;
        let mut prev: Option<char> = None;
        for c in out.chars() {
            if escaped {
                escaped = false;
                at_start = false;
                prev = Some(c);
                continue;
            }
            match c {
                '\\' => escaped = true,
                '<' | '>' | '`' | '[' | ']' | '(' | ')' | '*' | '_' | '|' | '!' | '~' => {
                    panic!("{medium}: raw `{c}` in {out:?} (from {input:?})")
                }
                '#' | '-' | '+' | '=' if at_start => {
                    panic!("{medium}: a line starts with raw `{c}` in {out:?} (from {input:?})")
                }
                '@' if !prev.is_some_and(|p| {
                    p.is_ascii_alphanumeric() || matches!(p, '.' | '_' | '+' | '-')
                }) =>
                {
                    panic!("{medium}: a raw mention in {out:?} (from {input:?})")
                }
                '\n' if one_line => panic!("{medium}: a line break in {out:?} (from {input:?})"),
                _ => {}
            }
            if !escaped {
                at_start = c == '\n' || (at_start && (c == ' ' || c == '\u{3000}'));
            }
            prev = Some(c);
        }
    }

    fn discord_is_inert(input: &str, out: &str) {
        let mut escaped = false;
        let mut at_start = true;
        let mut prev: Option<char> = None;
        for c in out.chars() {
            if escaped {
                escaped = false;
                at_start = false;
                prev = Some(c);
                continue;
            }
            match c {
                '\\' => escaped = true,
                '<' | '>' | '`' | '[' | ']' | '(' | ')' | '*' | '_' | '|' | '~' => {
                    panic!("discord: raw `{c}` in {out:?} (from {input:?})")
                }
                '#' | '-' | '+' if at_start => {
                    panic!("discord: a line starts with raw `{c}` in {out:?} (from {input:?})")
                }
                _ => {}
            }
            if prev == Some('@') {
                assert_eq!(c, '\u{200B}', "discord: a live mention in {out:?}");
            }
            at_start = c == '\n' || (at_start && c == ' ');
            prev = Some(c);
        }
    }

    /// Nothing Slack reads as a control, link or mention survives: no raw
    /// `<` or `>`, every `&` starts one of the three entities, every `://`
    /// and word-initial `@` is broken by a word joiner.
    fn slack_is_inert(input: &str, out: &str) {
        assert!(
            !out.contains('<') && !out.contains('>'),
            "slack: raw angle bracket in {out:?} (from {input:?})"
        );
        for (i, _) in out.match_indices('&') {
            let rest = &out[i..];
            assert!(
                rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;"),
                "slack: a bare `&` in {out:?} (from {input:?})"
            );
        }
        assert!(!out.contains("://"), "slack: a live link scheme in {out:?}");
        let cs: Vec<char> = out.chars().collect();
        for (i, c) in cs.iter().enumerate() {
            if *c == '@' && (i == 0 || !cs[i - 1].is_alphanumeric()) {
                assert_eq!(
                    cs.get(i + 1),
                    Some(&WORD_JOINER),
                    "slack: a live mention in {out:?} (from {input:?})"
                );
            }
        }
    }

    #[test]
    fn slack_examples() {
        assert_eq!(slack("<!channel> 助けて"), "&lt;!channel&gt; 助けて");
        assert_eq!(slack("<@U012AB3CD>"), "&lt;@\u{2060}U012AB3CD&gt;");
        assert_eq!(
            slack("<https://evil.example|銀行>"),
            "&lt;https:\u{2060}//evil.example|銀行&gt;"
        );
        assert_eq!(slack("A&B"), "A&amp;B");
        assert_eq!(slack("@here 至急"), "@\u{2060}here 至急");
        assert_eq!(slack("taro@example.jp"), "taro@example.jp");
        assert_eq!(slack_plain(&slack("<a & b>")), "<a & b>");
        // No special mention or channel link stands as typed in plain text.
        let p = slack_plain(&slack("<!channel> <!here> <#C0123>"));
        assert!(
            !p.contains("<!channel>") && !p.contains("<!here>") && !p.contains("<#C"),
            "{p}"
        );
        assert_eq!(slack("a\u{202E}b"), "a&lt;U+202E&gt;b");
    }

    #[test]
    fn the_corpus_is_loaded() {
        let c = corpus();
        assert!(c.len() >= 20, "only {} hostile cases", c.len());
        assert!(c.iter().any(|s| s.contains('\u{1b}')));
        assert!(c.iter().any(|s| s.contains('\u{202E}')));
    }

    #[test]
    fn every_medium_defuses_the_hostile_corpus() {
        for input in corpus() {
            for (medium, f) in MEDIA {
                let out = f(&input);
                no_hazard(medium, &input, &out);
                match *medium {
                    "terminal" => {}
                    "inbox_markdown" => markdown_is_inert(medium, &input, &out, false),
                    "inbox_line" => markdown_is_inert(medium, &input, &out, true),
                    "discord" => discord_is_inert(&input, &out),
                    "slack" => slack_is_inert(&input, &out),
                    other => panic!("no checker for medium {other}: add one"),
                }
            }
        }
    }

    #[test]
    fn ordinary_text_is_kept_in_every_medium() {
        // Japanese, ZWJ emoji sequences and variation selectors stay whole.
        for s in [
            "株式会社みどり製作所",
            "家族経営です👨\u{200D}👩\u{200D}👧",
            "❤\u{FE0F} 地域のために",
            "ｶﾀｶﾅ と ひらがな、漢字。",
        ] {
            for (medium, f) in MEDIA {
                assert_eq!(f(s), s, "{medium} changed ordinary text");
            }
        }
    }

    #[test]
    fn terminal_shows_controls_visibly() {
        assert_eq!(terminal("a\u{1b}[31mb"), "a␛[31mb");
        assert_eq!(terminal("x\u{202E}y"), "x<U+202E>y");
        assert_eq!(terminal("c\u{9b}2J"), "c<U+009B>2J");
        assert_eq!(terminal("del\u{7f}"), "del␡");
        assert_eq!(terminal("two\nlines\tok"), "two\nlines\tok");
        assert_eq!(terminal_line("two\nlines"), "two␤lines");
    }

    #[test]
    fn inbox_markdown_examples() {
        assert_eq!(
            inbox_markdown("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert\\(1\\)&gt;"
        );
        assert_eq!(
            inbox_markdown("[click](https://evil.example/)"),
            "\\[click\\]\\(https://evil.example/\\)"
        );
        assert_eq!(inbox_markdown("@everyone 助けて"), "&#64;everyone 助けて");
        assert_eq!(inbox_markdown("taro@example.jp"), "taro@example.jp");
        assert_eq!(
            inbox_markdown("# 見出し\n- 項目\n1. 番号"),
            "\\# 見出し\n\\- 項目\n1\\. 番号"
        );
        assert_eq!(inbox_markdown("a & b"), "a &amp; b");
        assert_eq!(inbox_line("a\n# b"), "a # b");
    }

    #[test]
    fn discord_keeps_its_escaping() {
        assert_eq!(
            discord("**太字** @everyone"),
            "\\*\\*太字\\*\\* @\u{200B}everyone"
        );
        assert_eq!(discord("# 見出し\n- 項目"), "\\# 見出し\n\\- 項目");
        assert_eq!(discord("[a](b)"), "\\[a\\]\\(b\\)");
        assert_eq!(discord("a\u{202E}b"), "a\\<U+202E\\>b");
    }

    #[test]
    fn json_for_terminal_stays_valid_json_with_the_same_values() {
        let v = serde_json::json!({ "raw": "a\u{1b}[2Jb\u{202E}c\u{9b}d\u{2028}e" });
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let safe = json_for_terminal(&pretty);
        assert!(!safe.chars().any(is_hazard), "{safe:?}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }
}
