//! The desk's texts: keys with named arguments ([`Text`]), rendered from
//! templates in data files (`dialogs/desk/ja.yaml`, `dialogs/desk/en.yaml`)
//! with the same strict handlebars machinery as the owner's texts.
//!
//! A decision carries keys and arguments, never rendered text, so the desk
//! stays platform-neutral: the adapter renders for its medium through a
//! [`Medium`], which escapes untrusted text (owner and staff input, hub
//! names, headlines) and writes mentions of staff and staff groups the
//! way its platform does. Templates are rendered in strict mode: a key or
//! an argument that is missing is an error, never empty text.

use crate::script::Lang;
use handlebars::Handlebars;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Every text key the desk uses, with the arguments it passes. `dialogs
/// check` checks that each language's file has exactly these keys and that
/// each template renders with these arguments.
pub const KEYS: &[(&str, &[&str])] = &[
    ("refused.no_staff_configured", &["hub"]),
    ("refused.not_staff", &["hub", "staff"]),
    ("refused.not_staff_unnamed", &["hub"]),
    ("refused.held_elsewhere", &["hub", "hub_id", "from"]),
    ("refused.forgotten", &[]),
    ("refused.other_hub", &["hub"]),
    ("refused.closed", &[]),
    ("refused.already_yours", &[]),
    ("refused.claimed_by_other", &["holder"]),
    ("refused.not_claimed", &[]),
    ("refused.release_not_yours", &["holder"]),
    ("refused.last_step", &[]),
    ("refused.empty_outcome", &[]),
    ("refused.empty_reason", &[]),
    ("refused.empty_message", &[]),
    ("refused.cannot_forward_there", &[]),
    ("refused.forward_pending", &["to"]),
    ("refused.unknown_hub", &["to", "hubs"]),
    ("refused.same_hub", &["hub"]),
    ("refused.directory_hub", &["to", "desk", "desk_id"]),
    ("refused.unknown_case", &[]),
    ("refused.not_now", &[]),
    ("done.claimed", &["case"]),
    ("done.released", &["case"]),
    ("done.advanced", &["case", "to"]),
    ("done.closed", &["case"]),
    ("done.forwarded", &["case", "to"]),
    ("done.forward_asked", &["to"]),
    ("done.replied", &["case"]),
    ("done.noted", &["case"]),
    ("note.claimed", &["who"]),
    ("note.released", &["who"]),
    ("note.advanced", &["who", "from", "to"]),
    ("note.closed", &["who", "outcome"]),
    ("note.forward_asked", &["who", "to", "reason"]),
    ("note.forward_withdrawn", &["to"]),
    ("note.forwarded_away", &["who", "to", "reason"]),
    ("note.forwarded_here", &["from", "reason"]),
    ("note.owner_agreed", &["to"]),
    ("note.owner_declined", &["to"]),
    ("note.replied", &["who", "text"]),
    ("note.note", &["who", "text"]),
    ("note.from_owner", &["case", "text"]),
    ("note.from_owner_with_attachments", &["case", "text"]),
    ("owner.from_staff", &["hub", "case", "text"]),
    (
        "owner.forward_ask",
        &["case", "from", "to", "reason", "items"],
    ),
    ("owner.forward_agreed", &["to"]),
    ("owner.forward_declined", &["to"]),
    ("owner.already_answered", &[]),
    ("owner.forward_impossible", &[]),
    ("owner.forward_outgrown_moved", &["case", "to", "now"]),
    ("owner.forward_outgrown_closed", &["case", "to"]),
    ("owner.forward_withdrawn", &["case", "to"]),
    ("post.head_new", &["case"]),
    ("post.head_forwarded", &["case"]),
    ("post.head_copy", &["case"]),
    ("post.reply_howto", &["reply"]),
    ("post.copy_of", &["hub"]),
    ("post.forwarded_from", &["from", "reason"]),
    ("post.why", &["rule", "reason"]),
    ("post.passed_over", &["rule", "reason"]),
    ("post.hub", &["hub"]),
    ("post.hub_copy", &["hub"]),
    ("post.status_open", &[]),
    ("post.status_claimed", &["who"]),
    ("post.status_closed", &["outcome"]),
    ("post.button_claim", &[]),
    ("post.button_release", &[]),
    ("post.button_forward", &[]),
    ("post.button_advance", &["to"]),
    ("post.button_close", &[]),
    ("post.field_hub", &[]),
    ("post.field_step", &[]),
    ("post.field_status", &[]),
    ("post.field_rule", &[]),
    ("post.field_tags", &[]),
    ("post.continued", &[]),
    ("post.ping_forwarded", &["case", "from"]),
    ("post.deleted_title", &["case"]),
    ("post.deleted_body", &[]),
    ("post.deleted_note", &[]),
    ("menu.forward_prompt", &["case"]),
    ("menu.choose_hub", &[]),
    ("menu.consented", &[]),
    ("menu.will_ask", &[]),
    ("menu.no_other_hub", &[]),
    ("form.close_title", &[]),
    ("form.outcome_label", &[]),
    ("form.outcome_placeholder", &[]),
    ("form.reason_title", &["hub"]),
    ("form.reason_label", &[]),
    ("error.try_again_shortly", &[]),
    ("error.not_saved", &[]),
    ("error.forward_failed", &[]),
    ("error.owner_unreachable", &[]),
    ("error.owner_not_asked", &[]),
    ("error.not_in_case_thread", &[]),
    ("owner.agree", &[]),
    ("owner.disagree", &[]),
    ("owner.request_gone", &[]),
    ("owner.case_being_delivered", &["case"]),
    ("owner.relayed", &["case"]),
    ("slack.reply_usage", &[]),
    ("form.reply_title", &[]),
    ("form.reply_label", &[]),
];

/// One argument of a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arg {
    /// Untrusted text, escaped for the medium.
    Text(String),
    /// Trusted text (a case id, a step number), placed as is.
    Code(String),
    /// A staff member or owner (`platform:user`), as a mention where the
    /// medium can.
    Actor(String),
    /// A staff group (a Discord role, a Slack user group).
    Group { platform: String, id: String },
    /// Untrusted items, escaped and joined the language's way.
    List(Vec<String>),
}

impl Arg {
    pub fn text(s: &str) -> Arg {
        Arg::Text(s.to_string())
    }
    pub fn code(s: &str) -> Arg {
        Arg::Code(s.to_string())
    }
}

/// A text to render: a key of the desk's templates and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Text {
    pub key: String,
    pub args: Vec<(String, Arg)>,
}

impl Text {
    pub fn new(key: &str) -> Text {
        Text {
            key: key.to_string(),
            args: Vec::new(),
        }
    }
    pub fn arg(mut self, name: &str, a: Arg) -> Text {
        self.args.push((name.to_string(), a));
        self
    }
    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// How a medium shows arguments.
pub trait Medium {
    /// Untrusted text made inert (no markup, no mention, no link).
    fn escape(&self, s: &str) -> String;
    /// A staff member or owner.
    fn actor(&self, id: &str) -> String;
    /// A staff group.
    fn group(&self, platform: &str, id: &str) -> String;
}

/// Plain text (the terminal): nothing to escape beyond control characters;
/// mentions are written as the identities themselves.
pub struct Plain;

impl Medium for Plain {
    fn escape(&self, s: &str) -> String {
        crate::escape::terminal_line(s)
    }
    fn actor(&self, id: &str) -> String {
        id.to_string()
    }
    fn group(&self, platform: &str, id: &str) -> String {
        format!("{platform}:{id}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("the desk text `{key}` ({lang}) does not render: {reason}; fix it in dialogs/desk/{lang}.yaml and run `madoguchi dialogs check`")]
    Render {
        key: String,
        lang: Lang,
        reason: String,
    },
}

/// The shipped texts, used when the dialogs folder has no `desk/` folder.
const SHIPPED: [(Lang, &str, &str); 2] = [
    (
        Lang::Ja,
        "dialogs/desk/ja.yaml",
        include_str!("../../dialogs/desk/ja.yaml"),
    ),
    (
        Lang::En,
        "dialogs/desk/en.yaml",
        include_str!("../../dialogs/desk/en.yaml"),
    ),
];

/// The compiled templates of both languages.
pub struct DeskTexts {
    hb: Handlebars<'static>,
}

impl std::fmt::Debug for DeskTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeskTexts")
    }
}

fn lang_code(l: Lang) -> &'static str {
    match l {
        Lang::Ja => "ja",
        Lang::En => "en",
    }
}

impl DeskTexts {
    /// The texts shipped with the program.
    pub fn shipped() -> DeskTexts {
        let sources: Vec<(Lang, String, String)> = SHIPPED
            .iter()
            .map(|(l, p, s)| (*l, p.to_string(), s.to_string()))
            .collect();
        DeskTexts::compile(&sources).expect("the shipped desk texts are checked by the tests")
    }

    /// The texts in `dialogs/desk/{ja,en}.yaml`, or the shipped ones when
    /// the folder has none.
    pub fn load(dialogs: &Path) -> Result<DeskTexts, TextsError> {
        let dir = dialogs.join("desk");
        if !dir.is_dir() {
            return Ok(DeskTexts::shipped());
        }
        let mut sources = Vec::new();
        for l in [Lang::Ja, Lang::En] {
            let p = dir.join(format!("{}.yaml", lang_code(l)));
            let text = std::fs::read_to_string(&p).map_err(|source| TextsError::Io {
                path: p.display().to_string(),
                source,
            })?;
            sources.push((l, p.display().to_string(), text));
        }
        DeskTexts::compile(&sources)
    }

    /// Parses and checks every language's file: exactly the known keys,
    /// templates that compile, call only known helpers, and render with
    /// their arguments in strict mode.
    pub fn compile(sources: &[(Lang, String, String)]) -> Result<DeskTexts, TextsError> {
        let mut hb = Handlebars::new();
        hb.register_escape_fn(handlebars::no_escape);
        hb.set_strict_mode(true);
        crate::render::register_helpers(&mut hb);
        for (lang, path, text) in sources {
            let invalid = |message: String| TextsError::Invalid {
                path: path.clone(),
                message,
            };
            let map: BTreeMap<String, String> = serde_saphyr::from_str(text).map_err(|e| {
                invalid(format!(
                    "{e}; the file is a mapping of text key to template"
                ))
            })?;
            for k in map.keys() {
                if !KEYS.iter().any(|(key, _)| key == k) {
                    return Err(invalid(format!(
                        "unknown key `{k}`; the keys are listed in src/desk/texts.rs (KEYS)"
                    )));
                }
            }
            for (key, args) in KEYS {
                let Some(t) = map.get(*key) else {
                    return Err(invalid(format!("the key `{key}` is missing")));
                };
                if t.trim().is_empty() {
                    return Err(invalid(format!("the text of `{key}` is empty")));
                }
                let name = format!("{}.{key}", lang_code(*lang));
                hb.register_template_string(&name, t)
                    .map_err(|e| invalid(format!("`{key}`: {e}")))?;
                let tpl = hb.get_template(&name).expect("just registered");
                if let Some(p) = crate::script::tmpl::check(tpl).first() {
                    return Err(invalid(format!(
                        "`{key}` line {} column {}: {:?}",
                        p.pos.0, p.pos.1, p.kind
                    )));
                }
                // A sample render: every argument present, so a variable
                // the desk does not pass fails here, not in front of staff.
                let ctx: serde_json::Map<String, serde_json::Value> = args
                    .iter()
                    .map(|a| (a.to_string(), serde_json::json!("x")))
                    .collect();
                hb.render(&name, &ctx).map_err(|e| {
                    invalid(format!(
                        "`{key}` does not render with its arguments ({}): {}",
                        args.join(", "),
                        e.reason()
                    ))
                })?;
            }
        }
        Ok(DeskTexts { hb })
    }

    /// Renders a text for a medium in a language.
    pub fn render(&self, lang: Lang, text: &Text, m: &dyn Medium) -> Result<String, TextsError> {
        let sep = match lang {
            Lang::Ja => "、",
            Lang::En => ", ",
        };
        let ctx: serde_json::Map<String, serde_json::Value> = text
            .args
            .iter()
            .map(|(n, a)| {
                let v = match a {
                    Arg::Text(s) => m.escape(s),
                    Arg::Code(s) => s.clone(),
                    Arg::Actor(id) => m.actor(id),
                    Arg::Group { platform, id } => m.group(platform, id),
                    Arg::List(items) => items
                        .iter()
                        .map(|i| m.escape(i))
                        .collect::<Vec<_>>()
                        .join(sep),
                };
                (n.clone(), serde_json::Value::String(v))
            })
            .collect();
        let name = format!("{}.{}", lang_code(lang), text.key);
        self.hb
            .render(&name, &ctx)
            .map(|s| s.trim_end().to_string())
            .map_err(|e| TextsError::Render {
                key: text.key.clone(),
                lang,
                reason: e.reason().to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_texts_compile_and_render_strictly() {
        let t = DeskTexts::shipped();
        let s = t
            .render(
                Lang::Ja,
                &Text::new("note.claimed").arg("who", Arg::Actor("cli:tanaka".into())),
                &Plain,
            )
            .unwrap();
        assert!(s.contains("cli:tanaka"), "{s}");
        // A missing argument is an error, not empty text.
        assert!(t
            .render(Lang::En, &Text::new("note.claimed"), &Plain)
            .is_err());
        assert!(t.render(Lang::En, &Text::new("no.such"), &Plain).is_err());
    }

    #[test]
    fn a_file_with_a_missing_key_or_an_unknown_variable_is_refused() {
        let ja = include_str!("../../dialogs/desk/ja.yaml").to_string();
        let en = include_str!("../../dialogs/desk/en.yaml").to_string();
        let ok = vec![
            (Lang::Ja, "ja".to_string(), ja.clone()),
            (Lang::En, "en".to_string(), en.clone()),
        ];
        assert!(DeskTexts::compile(&ok).is_ok());
        // The key's line and its one-line template go.
        let lines: Vec<&str> = ja.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("done.claimed:"))
            .unwrap();
        let missing = [&lines[..at], &lines[at + 2..]].concat().join("\n");
        let e = DeskTexts::compile(&[
            (Lang::Ja, "ja".into(), missing),
            (Lang::En, "en".into(), en.clone()),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("done.claimed"), "{e}");
        let unknown = ja.replace("done.claimed: |-", "done.claimed: |-\n  {{company}}");
        assert!(DeskTexts::compile(&[
            (Lang::Ja, "ja".into(), unknown),
            (Lang::En, "en".into(), en)
        ])
        .is_err());
    }
}
