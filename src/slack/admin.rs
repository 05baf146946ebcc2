//! `/madoguchi-admin reload` on Slack: Discord's `/admin reload` for the
//! Slack workspace. The edit of `dialogs/` is checked first; a broken one
//! is refused with its diagnostics and the running version keeps serving
//! ([`crate::runner::Runner::reload`], the report worded as on Discord).
//!
//! Only the configured administrators may reload: the members and user
//! groups listed in `SLACK_ADMINS` (like Discord's `admin_role`; without
//! it, everyone is refused and told how to configure it). Everyone else
//! gets an ephemeral refusal — the command's own acknowledgement, so it is
//! private wherever the command was typed.

use super::events::SlashCommand;
use super::Bot;
use crate::routing::SlackId;
use crate::script::Lang;

/// The command's name, as in `deploy/slack-app-manifest.yaml`.
pub(crate) const COMMAND: &str = "/madoguchi-admin";

impl Bot {
    /// Whether `user` is one of the configured administrators: listed
    /// by id, or a member of a listed user group (`usergroups.users.list`).
    pub(crate) async fn is_admin(&self, user: &str) -> bool {
        for a in &self.admins {
            let id = a.as_str();
            if id == user {
                return true;
            }
            if !id.starts_with('S') {
                continue;
            }
            match self
                .api
                .get("usergroups.users.list", &[("usergroup", id.to_string())])
                .await
            {
                Ok(r)
                    if r["users"]
                        .as_array()
                        .is_some_and(|us| us.iter().any(|u| u == user)) =>
                {
                    return true
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "cannot read an admin user group")
                }
            }
        }
        false
    }

    /// The acknowledgement of `/madoguchi-admin …` (sent at once, only to
    /// the person who typed it): the refusal, or that the reload started.
    pub(crate) async fn admin_ack(&self, c: &SlashCommand, lang: Lang) -> String {
        let ja = lang == Lang::Ja;
        if self.admins.is_empty() {
            return if ja {
                "管理者が設定されていないため、/madoguchi-admin は使えません（環境変数 SLACK_ADMINS に管理者のメンバーID（U…）またはユーザーグループID（S…）を書いてください）。"
            } else {
                "/madoguchi-admin is disabled: no administrator is configured (put administrators' member ids (U…) or user group ids (S…) in SLACK_ADMINS)."
            }
            .into();
        }
        if !self.is_admin(&c.user).await {
            return if ja {
                "このコマンドは管理者だけが使えます。"
            } else {
                "Only administrators can use this command."
            }
            .into();
        }
        if c.text.trim() != "reload" {
            return if ja {
                "使えるのは /madoguchi-admin reload です。"
            } else {
                "Use /madoguchi-admin reload."
            }
            .into();
        }
        if ja {
            "対話の定義を確認して再読み込みします…"
        } else {
            "Checking and reloading the dialogs…"
        }
        .into()
    }

    /// `/madoguchi-admin reload`, after the acknowledgement: checked again
    /// (the acknowledgement only chose its words), then the reload, whose
    /// report goes to the administrator alone.
    pub(crate) async fn on_admin_command(&self, c: SlashCommand) {
        if c.text.trim() != "reload" || !self.is_admin(&c.user).await {
            return;
        }
        // The language the acknowledgement used (`owner::command_ack`).
        let lang = match super::user_key(&c.user) {
            Some(k) => self.lang_for(&k, None).await,
            None => Lang::Ja,
        };
        let actor = format!("slack:{}", c.user);
        let res = self.runner.reload(&self.dialogs, &actor).await;
        let text = crate::escape::slack(&crate::discord::admin::report_text(
            &res,
            lang,
            "/madoguchi-admin reload",
        ));
        let channel = if c.channel.is_empty() {
            match self.dm_channel(&c.user).await {
                Ok(ch) => ch,
                Err(e) => {
                    tracing::warn!(error = %e, "could not report a reload");
                    return;
                }
            }
        } else {
            c.channel.clone()
        };
        let body = serde_json::json!({ "channel": channel, "user": c.user, "text": text });
        if let Err(e) = self.api.post("chat.postEphemeral", &body).await {
            // A channel the app is not in: the report goes to the DM.
            tracing::debug!(error = %e, "reload report not shown in the channel; sending it by DM");
            if let Ok(dm) = self.dm_channel(&c.user).await {
                let _ = self
                    .post_message(&serde_json::json!({ "channel": dm, "text": text, "unfurl_links": false, "unfurl_media": false }))
                    .await;
            }
        }
    }
}

/// Reads `SLACK_ADMINS`: member ids (`U…`, `W…`) and user group ids
/// (`S…`), separated by commas or spaces.
pub(crate) fn parse_admins(s: &str) -> Result<Vec<SlackId>, String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| SlackId::parse(p, &['U', 'W', 'S']).ok_or_else(|| p.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_are_members_and_user_groups() {
        let a = parse_admins("U0ADMIN001, S0ADMINS01 W0ADMIN002").unwrap();
        assert_eq!(a.len(), 3);
        assert!(parse_admins("").unwrap().is_empty());
        assert_eq!(
            parse_admins("U0ADMIN001,C0CHANNEL1").unwrap_err(),
            "C0CHANNEL1"
        );
        assert_eq!(parse_admins("u0admin001").unwrap_err(), "u0admin001");
    }
}
