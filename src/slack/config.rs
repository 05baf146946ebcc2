//! The Slack app's settings, from the environment: tokens never go in a
//! file, and never in a log (their `Debug` is redacted).
//!
//! | variable | |
//! |---|---|
//! | `SLACK_BOT_TOKEN` | the bot token (`xoxb-…`, OAuth & Permissions); Slack is started only when it is set |
//! | `SLACK_APP_TOKEN` | the app-level token (`xapp-…`, with `connections:write`) for Socket Mode |
//! | `SLACK_SIGNING_SECRET` | for the Events API over HTTP (Basic Information → Signing Secret) |
//! | `SLACK_EVENTS_ADDR` | serve the Events API over HTTP on this address instead of Socket Mode |
//! | `SLACK_API_BASE` | another Web API base URL (the tests' stand-in) |
//! | `SLACK_ADMIN_CHANNEL` | the administrators' channel id (`C…` or `G…`, the channel's details → bottom): the monthly KPI summary is posted there (invite the app to it); without it Slack posts no summary |
//! | `SLACK_ADMINS` | who may run `/madoguchi-admin reload`: member ids (`U…`) and user group ids (`S…`), comma-separated; without it nobody may |

use std::net::SocketAddr;

/// A token or secret. Its `Debug` never shows it, so it cannot leak into
/// logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackSecret(String);

impl SlackSecret {
    pub fn new(s: &str) -> Option<SlackSecret> {
        let s = s.trim();
        (!s.is_empty()).then(|| SlackSecret(s.to_string()))
    }
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SlackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackSecret([redacted])")
    }
}

/// How Slack's events reach the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Socket Mode: the app opens a WebSocket to Slack; no public URL.
    SocketMode,
    /// The Events API: Slack POSTs signed requests to this address.
    Http {
        addr: SocketAddr,
        secret: SlackSecret,
    },
}

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub bot_token: SlackSecret,
    pub app_token: Option<SlackSecret>,
    pub connection: Connection,
    pub api_base: Option<String>,
    /// Seconds before a dropped Socket Mode connection is opened again.
    pub reconnect_backoff_secs: u64,
    /// The dialogs folder (for the staff texts in `desk/`); `run` sets the
    /// configured one.
    pub dialogs: std::path::PathBuf,
    /// Who may reload the dialogs (`SLACK_ADMINS`): members and user
    /// groups, as Discord's `admin_role`.
    pub admins: Vec<crate::routing::SlackId>,
    /// The administrators' channel (`SLACK_ADMIN_CHANNEL`), for the
    /// monthly KPI summary.
    pub admin_channel: Option<crate::routing::SlackId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackConfigError {
    #[error("SLACK_BOT_TOKEN is not a bot token (it starts with xoxb-): copy it from OAuth & Permissions → Bot User OAuth Token")]
    BotToken,
    #[error("SLACK_APP_TOKEN is not set or not an app-level token (it starts with xapp-): Socket Mode needs one with connections:write (Basic Information → App-Level Tokens), or set SLACK_EVENTS_ADDR to use the Events API over HTTP")]
    AppToken,
    #[error("SLACK_EVENTS_ADDR is set but SLACK_SIGNING_SECRET is not: copy it from Basic Information → Signing Secret")]
    SigningSecret,
    #[error("SLACK_ADMINS has `{0}`, which is not a member id (U…) or user group id (S…): copy ids from a member's profile (⋮ → Copy member ID) or the user group's page")]
    Admins(String),
    #[error("SLACK_ADMIN_CHANNEL `{0}` is not a channel id (C… or G…): copy it from the channel's details (the id at the bottom)")]
    AdminChannel(String),
    #[error("SLACK_EVENTS_ADDR `{0}` is not an address: write it like 0.0.0.0:3000")]
    Addr(String),
}

impl SlackConfig {
    /// From the process environment; `Ok(None)` when `SLACK_BOT_TOKEN` is
    /// not set (Slack is not configured).
    pub fn from_env() -> Result<Option<SlackConfig>, SlackConfigError> {
        SlackConfig::from_vars(|k| std::env::var(k).ok())
    }

    /// From any source of variables (the tests' maps).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<SlackConfig>, SlackConfigError> {
        let Some(bot) = get("SLACK_BOT_TOKEN").and_then(|s| SlackSecret::new(&s)) else {
            return Ok(None);
        };
        if !bot.secret().starts_with("xoxb-") {
            return Err(SlackConfigError::BotToken);
        }
        let app_token = get("SLACK_APP_TOKEN").and_then(|s| SlackSecret::new(&s));
        let connection = match get("SLACK_EVENTS_ADDR").filter(|s| !s.trim().is_empty()) {
            Some(a) => {
                let addr = a
                    .trim()
                    .parse()
                    .map_err(|_| SlackConfigError::Addr(a.clone()))?;
                let secret = get("SLACK_SIGNING_SECRET")
                    .and_then(|s| SlackSecret::new(&s))
                    .ok_or(SlackConfigError::SigningSecret)?;
                Connection::Http { addr, secret }
            }
            None => {
                if !app_token
                    .as_ref()
                    .is_some_and(|t| t.secret().starts_with("xapp-"))
                {
                    return Err(SlackConfigError::AppToken);
                }
                Connection::SocketMode
            }
        };
        Ok(Some(SlackConfig {
            bot_token: bot,
            app_token,
            connection,
            api_base: get("SLACK_API_BASE").filter(|s| !s.trim().is_empty()),
            reconnect_backoff_secs: 5,
            dialogs: "dialogs".into(),
            admins: match get("SLACK_ADMINS") {
                Some(a) => super::admin::parse_admins(&a).map_err(SlackConfigError::Admins)?,
                None => Vec::new(),
            },
            admin_channel: match get("SLACK_ADMIN_CHANNEL").filter(|s| !s.trim().is_empty()) {
                Some(c) => Some(
                    crate::routing::SlackId::parse(c.trim(), &['C', 'G'])
                        .ok_or(SlackConfigError::AdminChannel(c))?,
                ),
                None => None,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn socket_mode_by_default_http_as_an_option() {
        assert!(SlackConfig::from_vars(vars(&[])).unwrap().is_none());
        let c = SlackConfig::from_vars(vars(&[
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_APP_TOKEN", "xapp-2"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.connection, Connection::SocketMode);
        assert_eq!(
            SlackConfig::from_vars(vars(&[("SLACK_BOT_TOKEN", "xoxb-1")])).unwrap_err(),
            SlackConfigError::AppToken
        );
        assert_eq!(
            SlackConfig::from_vars(vars(&[("SLACK_BOT_TOKEN", "xapp-1")])).unwrap_err(),
            SlackConfigError::BotToken
        );
        let h = SlackConfig::from_vars(vars(&[
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_EVENTS_ADDR", "127.0.0.1:3000"),
            ("SLACK_SIGNING_SECRET", "s3cr3t"),
        ]))
        .unwrap()
        .unwrap();
        assert!(matches!(h.connection, Connection::Http { .. }));
        assert_eq!(
            SlackConfig::from_vars(vars(&[
                ("SLACK_BOT_TOKEN", "xoxb-1"),
                ("SLACK_EVENTS_ADDR", "127.0.0.1:3000")
            ]))
            .unwrap_err(),
            SlackConfigError::SigningSecret
        );
    }

    #[test]
    fn the_admin_channel_is_a_channel_id() {
        let base = [("SLACK_BOT_TOKEN", "xoxb-1"), ("SLACK_APP_TOKEN", "xapp-2")];
        let c = SlackConfig::from_vars(vars(&base)).unwrap().unwrap();
        assert!(c.admin_channel.is_none());
        let mut with = base.to_vec();
        with.push(("SLACK_ADMIN_CHANNEL", "C0ADMIN001"));
        let c = SlackConfig::from_vars(vars(&with)).unwrap().unwrap();
        assert_eq!(c.admin_channel.unwrap().to_string(), "C0ADMIN001");
        let mut bad = base.to_vec();
        bad.push(("SLACK_ADMIN_CHANNEL", "U0MEMBER01"));
        assert_eq!(
            SlackConfig::from_vars(vars(&bad)).unwrap_err(),
            SlackConfigError::AdminChannel("U0MEMBER01".into())
        );
    }

    #[test]
    fn tokens_are_never_shown() {
        let c = SlackConfig::from_vars(vars(&[
            ("SLACK_BOT_TOKEN", "xoxb-very-secret"),
            ("SLACK_APP_TOKEN", "xapp-also-secret"),
        ]))
        .unwrap()
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("also-secret"),
            "{shown}"
        );
    }
}
