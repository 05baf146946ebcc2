//! What the owner-side renderers of every chat platform share: the id
//! scheme that ties a press back to its question (`{kind}:{session}:{node}
//! [:{arg}]`, each platform choosing its kinds and its length limit), the
//! command buttons' labels, and the cutting of text to a platform's
//! limits. Pure; the platforms' own layouts stay in `discord::render` and
//! `slack::render`.

use crate::script::{Command, Lang};

/// Picks the Japanese or English text.
pub fn t(lang: Lang, ja: &str, en: &str) -> String {
    match lang {
        Lang::Ja => ja.to_string(),
        Lang::En => en.to_string(),
    }
}

/// Cuts text to `max` characters, marking the cut with "…".
/// A number question's unit as an English reader says it: the scripts
/// name units in Japanese (名, 円), which the parser reads in both
/// languages, but an English prompt should not show them.
pub fn unit_for(lang: Lang, unit: &str) -> String {
    match (lang, unit) {
        (Lang::En, "名" | "人") => "people".to_string(),
        (Lang::En, "円") => "yen".to_string(),
        (Lang::En, "社") => "companies".to_string(),
        (Lang::En, "年") => "years".to_string(),
        (Lang::En, "か月" | "ヶ月" | "カ月") => "months".to_string(),
        _ => unit.to_string(),
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Splits text into pieces of at most `max` characters, preferring line
/// breaks, so long text goes out as several messages instead of failing.
pub fn split_text(s: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for line in s.split_inclusive('\n') {
        let n = line.chars().count();
        if cur_len + n <= max {
            cur.push_str(line);
            cur_len += n;
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur).trim_end().to_string());
            cur_len = 0;
        }
        if n <= max {
            cur.push_str(line);
            cur_len = n;
        } else {
            let chars: Vec<char> = line.chars().collect();
            for chunk in chars.chunks(max) {
                let piece: String = chunk.iter().collect();
                if chunk.len() == max {
                    out.push(piece);
                } else {
                    cur_len = chunk.len();
                    cur = piece;
                }
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim_end().to_string());
    }
    out.retain(|p| !p.trim().is_empty());
    out
}

/// The label of a global command button.
pub fn command_label(c: Command, lang: Lang) -> &'static str {
    match (c, lang) {
        (Command::Help, Lang::En) => "Help",
        (Command::Back, Lang::En) => "Back",
        (Command::Answers, Lang::En) => "My answers",
        (Command::Restart, Lang::En) => "Restart",
        (Command::Cancel, Lang::En) => "Cancel",
        (Command::Skip, Lang::En) => "Skip",
        (c, Lang::Ja) => c.display(Lang::Ja),
    }
}

/// A parsed owner-side element id (a Discord custom_id, a Slack action_id
/// or modal callback_id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerId {
    pub kind: char,
    pub session: i64,
    /// The node index, or 0 for command buttons.
    pub node: u16,
    /// The option (button), the command name, or `~k` for a select chunk.
    pub arg: Option<String>,
}

impl OwnerId {
    /// Reads an id whose kind is one of `kinds` (each platform has its
    /// own); `c` ids carry a command name in place of the node.
    pub fn parse(s: &str, kinds: &[char]) -> Option<OwnerId> {
        let mut parts = s.splitn(4, ':');
        let mut k = parts.next()?.chars();
        let kind = k.next()?;
        if k.next().is_some() || !kinds.contains(&kind) {
            return None;
        }
        let session = parts.next()?.parse().ok()?;
        let third = parts.next()?;
        if kind == 'c' {
            // The node of the question under which the button was sent
            // (see `command_id_at`); 0 for ids without it.
            let node = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            return Some(OwnerId {
                kind,
                session,
                node,
                arg: Some(third.to_string()),
            });
        }
        let node = third.parse().ok()?;
        let arg = parts.next().map(str::to_string);
        Some(OwnerId {
            kind,
            session,
            node,
            arg,
        })
    }

    /// The option a button stands for, or `None` for a select chunk marker.
    pub fn option(&self) -> Option<&str> {
        self.arg.as_deref().filter(|a| !a.starts_with('~'))
    }
}

pub fn id(kind: char, session: i64, node: u16, arg: Option<&str>) -> String {
    match arg {
        Some(a) => format!("{kind}:{session}:{node}:{a}"),
        None => format!("{kind}:{session}:{node}"),
    }
}

/// The id of an answer button, falling back to the option's index when
/// the option id would make it longer than `max` or could be misread as
/// an index (`#`) or a select chunk (`~`).
pub fn answer_id(session: i64, node: u16, option_id: &str, index: usize, max: usize) -> String {
    let full = id('q', session, node, Some(option_id));
    if full.len() <= max && !option_id.starts_with('#') && !option_id.starts_with('~') {
        full
    } else {
        id('q', session, node, Some(&format!("#{index}")))
    }
}

pub fn command_id(session: i64, c: Command) -> String {
    format!("c:{session}:{}", c.name())
}

/// A command button under the question of node `node`:
/// `c:{session}:{command}:{node}`. The node does not change what the
/// button does; it tells which question a message carried when the message
/// is read back from the chat's history, e.g. by an instance that took
/// over from one that died before recording what it had shown.
pub fn command_id_at(session: i64, node: u16, c: Command) -> String {
    format!("c:{session}:{}:{node}", c.name())
}

/// The session and node of the question a message carried, from the ids
/// of its command buttons (`command_id_at`); `None` for a message without
/// a question, or sent before the ids carried the node.
pub fn question_of<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    kinds: &[char],
) -> Option<(i64, u16)> {
    ids.into_iter().find_map(|id| {
        let o = OwnerId::parse(id, kinds)?;
        (o.kind == 'c' && id.matches(':').count() == 3).then_some((o.session, o.node))
    })
}

pub fn modal_id(session: i64, node: u16) -> String {
    id('t', session, node, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_to_the_platforms_kinds() {
        let i = OwnerId::parse("q:12:7:manufacturing", &['q']).unwrap();
        assert_eq!(
            (i.kind, i.session, i.node, i.option()),
            ('q', 12, 7, Some("manufacturing"))
        );
        assert!(OwnerId::parse("x:1:2", &['q', 'c']).is_none());
        assert!(OwnerId::parse("qq:1:2", &['q']).is_none());
        assert_eq!(answer_id(1, 2, "#3", 0, 100), "q:1:2:#0");
        assert_eq!(answer_id(1, 2, "abcdef", 5, 8), "q:1:2:#5");
        assert_eq!(answer_id(1, 2, "ab", 5, 8), "q:1:2:ab");
        let c = OwnerId::parse(&command_id_at(12, 7, Command::Help), &['c']).unwrap();
        assert_eq!(
            (c.kind, c.session, c.node, c.arg.as_deref()),
            ('c', 12, 7, Some("help"))
        );
        let old = OwnerId::parse("c:12:help", &['c']).unwrap();
        assert_eq!((old.node, old.arg.as_deref()), (0, Some("help")));
        assert_eq!(
            question_of(["q:12:7:a", "c:12:back:7", "c:12:help:7"], &['q', 'c']),
            Some((12, 7))
        );
        assert_eq!(question_of(["q:12:7:a", "c:12:help"], &['q', 'c']), None);
    }

    #[test]
    fn long_text_is_split_at_line_breaks_and_cut_with_a_mark() {
        assert_eq!(split_text("ab\ncd\nef", 5), ["ab", "cd\nef"]);
        assert_eq!(truncate("あいうえお", 3), "あい…");
    }
}
