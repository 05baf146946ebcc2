//! `/admin reload` and reports of dialog reloads.
//!
//! Administrators edit `dialogs/`; the bot reloads on file change and on
//! `/admin reload`. Either way the edit is checked first: a broken edit is
//! rejected with its diagnostics (in the administrator's language) and the
//! running version keeps serving. Only members holding the configured admin
//! role may reload.

use super::Bot;
use crate::runner::{ReloadError, ReloadReport};
use crate::script::{Lang, Severity};
use serde_json::json;
use serenity::all::{ChannelId, CommandInteraction};

/// The text an administrator reads about a reload.
pub(crate) fn report_text(
    res: &Result<ReloadReport, ReloadError>,
    lang: Lang,
    trigger: &str,
) -> String {
    let ja = lang == Lang::Ja;
    let s = match res {
        Ok(r) if r.changed.is_empty() => {
            if ja {
                format!("{trigger}: 再読み込みしました（変更はありません）。")
            } else {
                format!("{trigger}: reloaded (nothing changed).")
            }
        }
        Ok(r) => {
            let lines: Vec<String> = r
                .changed
                .iter()
                .map(|(script, l, from, to)| {
                    let short = |v: &str| v.chars().take(12).collect::<String>();
                    let from = if from.is_empty() {
                        "—".to_string()
                    } else {
                        short(from)
                    };
                    format!("・{script} ({l}): {from} → {}", short(to))
                })
                .collect();
            if ja {
                format!("{trigger}: 再読み込みしました。新しい相談から新しい版を使います（進行中の相談は元の版のまま）。\n{}", lines.join("\n"))
            } else {
                format!("{trigger}: reloaded. New consultations use the new version; those in progress keep theirs.\n{}", lines.join("\n"))
            }
        }
        Err(ReloadError::Invalid(diags)) => {
            let errors: Vec<String> = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.render(lang))
                .collect();
            let head = if ja {
                format!("{trigger}: 編集に {} 件のエラーがあるため読み込みませんでした。いまの版で動き続けています。", errors.len())
            } else {
                format!("{trigger}: the edit has {} error(s) and was not loaded; the running version keeps serving.", errors.len())
            };
            format!("{head}\n```\n{}\n```", errors.join("\n"))
        }
        Err(e) => {
            if ja {
                format!("{trigger}: 再読み込みに失敗しました（{e}）。いまの版で動き続けています。")
            } else {
                format!("{trigger}: the reload failed ({e}); the running version keeps serving.")
            }
        }
    };
    cut(s)
}

/// Discord messages hold 2,000 characters; keep the code block closed.
fn cut(s: String) -> String {
    if s.chars().count() <= 1900 {
        return s;
    }
    let mut t: String = s.chars().take(1850).collect();
    if t.matches("```").count() % 2 == 1 {
        t.push_str("\n```");
    }
    t.push_str("\n…");
    t
}

impl Bot {
    pub(crate) async fn on_admin(&self, cmd: &CommandInteraction) {
        let lang = super::locale_lang(&cmd.locale).unwrap_or(Lang::Ja);
        let ja = lang == Lang::Ja;
        let allowed = match (self.cfg.discord.admin_role_id(), &cmd.member) {
            (Some(role), Some(m)) => m.roles.iter().any(|r| r.get() == role),
            _ => false,
        };
        if !allowed {
            let text = if self.cfg.discord.admin_role_id().is_none() {
                if ja {
                    "管理者ロールが設定されていないため、/admin は使えません（madoguchi.toml の [discord] admin_role）。"
                } else {
                    "/admin is disabled: no admin role is configured ([discord] admin_role in madoguchi.toml)."
                }
            } else if ja {
                "このコマンドは管理者ロールの方だけが使えます。"
            } else {
                "Only members with the admin role can use this command."
            };
            return self.respond_ephemeral(cmd.id, &cmd.token, text).await;
        }
        let sub = cmd
            .data
            .options
            .first()
            .map(|o| o.name.as_str())
            .unwrap_or("");
        if sub != "reload" {
            return self
                .respond_ephemeral(
                    cmd.id,
                    &cmd.token,
                    if ja {
                        "使えるのは /admin reload です。"
                    } else {
                        "Use /admin reload."
                    },
                )
                .await;
        }
        // Checking and compiling can take longer than Discord's 3 seconds.
        if let Err(e) = self
            .respond(
                cmd.id,
                &cmd.token,
                json!({ "type": 5, "data": { "flags": 64 } }),
            )
            .await
        {
            tracing::warn!(interaction = %cmd.id, error = %e, "could not acknowledge /admin");
            return;
        }
        let actor = format!("discord:{}", cmd.user.id);
        let res = self.runner.reload(&self.cfg.dialogs, &actor).await;
        let text = report_text(&res, lang, "/admin reload");
        if let Err(e) = self
            .edit_original(&cmd.token, json!({ "content": text }))
            .await
        {
            tracing::warn!(interaction = %cmd.id, error = %e, "could not report a reload");
        }
    }

    /// Posts to the admin channel; false when none is configured or the
    /// post failed (logged), so a once-only post can be tried again.
    pub(crate) async fn post_admin_checked(&self, text: String) -> bool {
        let Some(ch) = self.cfg.discord.admin_channel_id() else {
            return false;
        };
        match self
            .send(ChannelId::new(ch), json!({ "content": text }))
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(channel = ch, error = %e, "could not post to the admin channel");
                false
            }
        }
    }

    /// Posts to the admin channel, if one is configured.
    pub(crate) async fn post_admin(&self, text: String) {
        let Some(ch) = self.cfg.discord.admin_channel_id() else {
            return;
        };
        if let Err(e) = self
            .send(ChannelId::new(ch), json!({ "content": text }))
            .await
        {
            tracing::warn!(channel = ch, error = %e, "could not post to the admin channel");
        }
    }
}
