//! The Discord side of the desk: staff identities and roles as desk
//! actors, the network of hubs from the current routing, and desk texts
//! rendered for Discord (markdown escaped, staff and roles as mentions).

use super::Bot;
use crate::desk::{Actor, Medium, Network, StaffId, Text};
use crate::render::escape_markdown;
use crate::script::Lang;
use serenity::all::{RoleId, UserId};

/// Discord markdown: owner and staff text escaped, `discord:` identities
/// as user mentions and Discord roles as role mentions (which pings only
/// where a message's `allowed_mentions` lets them).
pub(crate) struct DiscordMedium;

impl Medium for DiscordMedium {
    fn escape(&self, s: &str) -> String {
        escape_markdown(s)
    }
    fn actor(&self, id: &str) -> String {
        match id.strip_prefix("discord:") {
            Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => format!("<@{n}>"),
            _ => escape_markdown(id),
        }
    }
    fn group(&self, platform: &str, id: &str) -> String {
        if platform == "discord" && !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
            format!("<@&{id}>")
        } else {
            escape_markdown(&format!("{platform}:{id}"))
        }
    }
}

/// A Discord member as a desk actor, with the roles the interaction
/// carried (none outside a guild).
pub(crate) fn actor(user: UserId, roles: Option<&[RoleId]>) -> Actor {
    Actor {
        id: StaffId::new("discord", &user.to_string()).expect("a snowflake is a valid user part"),
        groups: roles
            .unwrap_or_default()
            .iter()
            .map(|r| r.to_string())
            .collect(),
    }
}

impl Bot {
    /// The hubs as the current routing names them; forwarded cases are
    /// delivered on Discord.
    pub(crate) fn network(&self) -> Network {
        let mut n = Network::from_bundle(&self.runner.bundle());
        n.transports = vec!["discord".into()];
        n
    }

    /// A desk text for staff (Japanese with an English gloss, as staff
    /// texts on Discord always were). A text that does not render is
    /// logged and replaced by its key, so staff still see that something
    /// happened; `dialogs check` keeps this from happening.
    pub(crate) fn staff_text(&self, t: &Text) -> String {
        self.render_text(Lang::Ja, t)
    }

    /// A desk text for a place Discord shows as plain text (modal titles,
    /// thread names): nothing to escape there.
    pub(crate) fn render_plain(&self, t: &Text) -> String {
        self.desk_texts
            .render(Lang::Ja, t, &crate::desk::texts::Plain)
            .unwrap_or_else(|_| t.key.clone())
    }

    /// A desk text in the owner's language.
    pub(crate) fn render_text(&self, lang: Lang, t: &Text) -> String {
        match self.desk_texts.render(lang, t, &DiscordMedium) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(key = %t.key, error = %e, "a desk text does not render");
                t.key.clone()
            }
        }
    }
}
