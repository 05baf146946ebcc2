//! `madoguchi.toml`: how `madoguchi run` runs the bot.
//!
//! The token is never in this file: it comes from the `DISCORD_TOKEN`
//! environment variable. Which channel and staff role belong to each hub is
//! part of the routing (`dialogs/routing.yaml`, `targets.discord`), so the
//! hubs, their rules and their channels are edited and checked together.
//! See `madoguchi.example.toml` at the repository root.

use crate::script::Lang;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {error}; copy madoguchi.example.toml to {path} or pass another file with --config")]
    Read { path: String, error: std::io::Error },
    #[error(
        "the config file {path} is not valid: {message}; compare it with madoguchi.example.toml"
    )]
    Parse { path: String, message: String },
    #[error("the config file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SQLite database file (created if missing). `--db` overrides it.
    #[serde(default = "default_db")]
    pub db: PathBuf,
    /// The dialogs folder (scripts and routing.yaml). `--dialogs` overrides it.
    #[serde(default = "default_dialogs")]
    pub dialogs: PathBuf,
    #[serde(default)]
    pub discord: DiscordConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// Who delivers the cases (set by `madoguchi run`, not in the file).
    #[serde(skip)]
    pub deliveries: super::Deliveries,
    #[serde(default)]
    pub reminders: RemindersConfig,
}

/// The reminder timer loop (the time limits themselves are in
/// `routing.yaml`, under `reminders:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersConfig {
    /// How often due timers are looked for.
    #[serde(default = "default_tick")]
    pub tick_secs: u64,
    /// How often every open and claimed case is read to bring its timers
    /// in line (a backstop: cases get their timers when they change).
    #[serde(default = "default_sync")]
    pub sync_secs: u64,
    /// The local inbox for hubs without a Discord channel (`madoguchi run
    /// --inbox`; not read from the file).
    #[serde(skip)]
    pub inbox: Option<PathBuf>,
    /// The timer loop runs beside the bot, for every platform at once
    /// (set by `madoguchi run`, not read from the file): the bot then
    /// runs none of its own.
    #[serde(skip)]
    pub elsewhere: bool,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        RemindersConfig {
            tick_secs: default_tick(),
            sync_secs: default_sync(),
            inbox: None,
            elsewhere: false,
        }
    }
}

fn default_tick() -> u64 {
    30
}

fn default_sync() -> u64 {
    900
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The consultation script owners run.
    #[serde(default = "default_script")]
    pub script: String,
    /// The language for owners whose Discord locale is neither Japanese
    /// nor English (and for direct messages, which carry no locale).
    #[serde(default = "default_lang")]
    pub default_lang: Lang,
    /// Staff write to the owner from a case thread by starting a message
    /// with this prefix (needs the MESSAGE CONTENT intent). Empty or absent:
    /// only `/reply` works, and the bot asks for no privileged intent.
    #[serde(default)]
    pub relay_prefix: Option<String>,
    /// For tests only: the base URL of a Discord API stand-in
    /// (`http://127.0.0.1:PORT`). Setting it turns off serenity's rate
    /// limiter, which would otherwise send requests to discord.com.
    #[serde(default)]
    pub api_base: Option<String>,
    /// Members holding this role (a Discord role id, in quotes) may run
    /// `/admin reload`. Without it, `/admin` refuses everyone.
    #[serde(default)]
    pub admin_role: Option<String>,
    /// Where the bot reports reloads triggered by edits of the dialogs
    /// folder, including rejected edits with their diagnostics.
    #[serde(default)]
    pub admin_channel: Option<String>,
    /// Reload the dialogs when their files change (checked first; a broken
    /// edit is rejected and the running version keeps serving).
    #[serde(default = "default_true")]
    pub watch_dialogs: bool,
    /// How often the dialogs folder is checked for edits.
    #[serde(default = "default_watch_ms")]
    pub watch_interval_ms: u64,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            script: default_script(),
            default_lang: default_lang(),
            relay_prefix: None,
            api_base: None,
            admin_role: None,
            admin_channel: None,
            watch_dialogs: true,
            watch_interval_ms: default_watch_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_watch_ms() -> u64 {
    2000
}

impl DiscordConfig {
    pub fn admin_role_id(&self) -> Option<u64> {
        self.admin_role
            .as_deref()
            .and_then(|r| r.trim().parse().ok())
    }
    pub fn admin_channel_id(&self) -> Option<u64> {
        self.admin_channel
            .as_deref()
            .and_then(|r| r.trim().parse().ok())
    }

    /// The relay prefix, if one is configured (blank counts as none).
    pub fn prefix(&self) -> Option<&str> {
        self.relay_prefix
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }
}

/// How the delivery worker posts routed cases: `[outbox]`, shared by
/// every platform's sender.
pub use crate::outbox::OutboxConfig;

fn default_db() -> PathBuf {
    PathBuf::from("madoguchi.db")
}
fn default_dialogs() -> PathBuf {
    PathBuf::from("dialogs")
}
fn default_script() -> String {
    "first_contact".into()
}
fn default_lang() -> Lang {
    Lang::Ja
}
impl Default for Config {
    fn default() -> Self {
        Config {
            db: default_db(),
            dialogs: default_dialogs(),
            discord: DiscordConfig::default(),
            outbox: OutboxConfig::default(),
            deliveries: super::Deliveries::default(),
            reminders: RemindersConfig::default(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses the file's text; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: name.to_string(),
            message: e.to_string().trim().to_string(),
        })?;
        if c.discord.script.trim().is_empty() {
            return Err(ConfigError::Invalid {
                path: name.to_string(),
                message:
                    "[discord] script is empty: name the consultation script, e.g. first_contact"
                        .into(),
            });
        }
        if let Some(base) = &c.discord.api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    path: name.to_string(),
                    message: format!("[discord] api_base `{base}` is not a URL: write it like http://127.0.0.1:8080, or remove it to use discord.com"),
                });
            }
        }
        for (key, v) in [
            ("admin_role", &c.discord.admin_role),
            ("admin_channel", &c.discord.admin_channel),
        ] {
            if let Some(v) = v {
                if v.trim().parse::<u64>().is_err() {
                    return Err(ConfigError::Invalid {
                        path: name.to_string(),
                        message: format!("[discord] {key} `{v}` is not a Discord id: copy it with developer mode (right click → Copy ID) and write it in quotes"),
                    });
                }
            }
        }
        if c.outbox.max_attempts < 1 {
            return Err(ConfigError::Invalid {
                path: name.to_string(),
                message: "[outbox] max_attempts must be at least 1".into(),
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../madoguchi.example.toml");
        let c = Config::parse(text, "madoguchi.example.toml").unwrap();
        assert_eq!(c.discord.default_lang, Lang::Ja);
        assert_eq!(c.discord.script, "first_contact");
        assert!(
            c.discord.api_base.is_none(),
            "the example must talk to the real Discord"
        );
        assert_eq!(c.reminders.tick_secs, 30);
        assert_eq!(c.reminders.sync_secs, 900);
        // The inbox comes from `--inbox`, never from the file.
        assert!(Config::parse("[reminders]\ninbox = \"x\"\n", "x.toml").is_err());
        assert!(c.reminders.inbox.is_none());
    }

    #[test]
    fn defaults_and_errors() {
        let c = Config::parse("", "x.toml").unwrap();
        assert_eq!(c.db, PathBuf::from("madoguchi.db"));
        assert_eq!(c.discord.prefix(), None);
        assert_eq!(c.outbox.backoff(0), Duration::from_secs(2));
        assert_eq!(c.outbox.backoff(1), Duration::from_secs(4));
        assert_eq!(c.outbox.backoff(30), Duration::from_secs(900));
        let c = Config::parse(
            "[discord]\nrelay_prefix = \"  \"\ndefault_lang = \"en\"\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.discord.prefix(), None);
        assert_eq!(c.discord.default_lang, Lang::En);
        let e = Config::parse("[discord]\ntoken = \"abc\"\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field") && e.contains("x.toml"), "{e}");
        let e = Config::parse("[discord]\napi_base = \"localhost\"\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http://127.0.0.1"), "{e}");
    }
}
