//! Identifiers: support hubs, chat users, sessions and cases.
//!
//! Identifiers are keys in storage and configuration, so unlike owners'
//! answers they are validated strictly; only surrounding whitespace and
//! full-width characters are forgiven.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::text::{excerpt, normalize_input};

/// The id of a regional support hub, e.g. "hyogo-pro".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HubId(String);

/// Errors from `HubId::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HubIdError {
    #[error("the hub id is empty: use lowercase letters, digits and '-', e.g. hyogo-pro")]
    Empty,
    #[error("the hub id is too long ({0} characters): use at most 64 lowercase letters, digits and '-', e.g. hyogo-pro")]
    TooLong(usize),
    #[error("the hub id 「{id}」 contains {ch:?}: use lowercase letters, digits and '-', e.g. hyogo-pro")]
    InvalidChar { id: String, ch: char },
    #[error("the hub id 「{0}」 starts or ends with '-': use lowercase letters, digits and '-' inside, e.g. hyogo-pro")]
    EdgeHyphen(String),
}

impl HubId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<HubId, HubIdError> {
        let id = normalize_input(s);
        if id.is_empty() {
            return Err(HubIdError::Empty);
        }
        let len = id.chars().count();
        if len > Self::MAX_LEN {
            return Err(HubIdError::TooLong(len));
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(HubIdError::InvalidChar {
                id: excerpt(&id),
                ch,
            });
        }
        if id.starts_with('-') || id.ends_with('-') {
            return Err(HubIdError::EdgeHyphen(id));
        }
        Ok(HubId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HubId {
    type Error = HubIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        HubId::parse(&s)
    }
}

impl From<HubId> for String {
    fn from(id: HubId) -> String {
        id.0
    }
}

/// The chat transport a user came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Terminal,
    Discord,
    Slack,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Terminal, Transport::Discord, Transport::Slack];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Terminal => "terminal",
            Transport::Discord => "discord",
            Transport::Slack => "slack",
        }
    }

    /// Case-insensitive, so "Discord" in a config file works.
    pub fn parse(s: &str) -> Result<Transport, UserKeyError> {
        let key = normalize_input(s).to_ascii_lowercase();
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str() == key)
            .ok_or_else(|| UserKeyError::UnknownTransport(excerpt(&key)))
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as seen by one transport, written "discord:123456". The id is
/// opaque (Slack ids may themselves contain ':'), so only the first ':'
/// separates transport and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserKey {
    transport: Transport,
    id: String,
}

/// Errors from `UserKey::parse` and `UserKey::new`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserKeyError {
    #[error("「{0}」 is not a user key: write it as transport:id, e.g. discord:123456 or terminal:local")]
    MissingSeparator(String),
    #[error("unknown transport 「{0}」: use terminal, discord or slack")]
    UnknownTransport(String),
    #[error("the user id is empty: write it after the ':', e.g. discord:123456")]
    EmptyId,
    #[error("the user id is too long ({0} characters): ids have at most 128 characters")]
    IdTooLong(usize),
    #[error("the user id 「{0}」 contains spaces or control characters: remove them, e.g. discord:123456")]
    InvalidId(String),
    #[error("「{0}」 is not a Discord user id: Discord ids are digits only, e.g. discord:123456789012345678")]
    NotDiscordId(String),
}

impl UserKey {
    pub const MAX_ID_LEN: usize = 128;

    pub fn new(transport: Transport, id: &str) -> Result<UserKey, UserKeyError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(UserKeyError::EmptyId);
        }
        let len = id.chars().count();
        if len > Self::MAX_ID_LEN {
            return Err(UserKeyError::IdTooLong(len));
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UserKeyError::InvalidId(excerpt(id)));
        }
        // Discord names every user by a snowflake, so a key with anything
        // else can match no owner: a typo (`discord:abc`, a user name
        // instead of the id) is refused here rather than found to hold no
        // data. Slack's and the terminal's ids have no such fixed form.
        if transport == Transport::Discord && !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(UserKeyError::NotDiscordId(excerpt(id)));
        }
        Ok(UserKey {
            transport,
            id: id.to_string(),
        })
    }

    pub fn parse(s: &str) -> Result<UserKey, UserKeyError> {
        let text = normalize_input(s);
        let (transport, id) = text
            .split_once(':')
            .ok_or_else(|| UserKeyError::MissingSeparator(excerpt(&text)))?;
        UserKey::new(Transport::parse(transport)?, id)
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Display for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transport, self.id)
    }
}

impl TryFrom<String> for UserKey {
    type Error = UserKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        UserKey::parse(&s)
    }
}

impl From<UserKey> for String {
    fn from(k: UserKey) -> String {
        k.to_string()
    }
}

/// A conversation session's database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub i64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A consultation case's database id, shown to people as "C-000042" so it is
/// easy to read out on the phone and to search for in mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(pub i64);

/// Errors from `CaseId::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaseIdError {
    #[error("「{0}」 is not a case number: type it like C-000042 or 42")]
    Invalid(String),
}

impl CaseId {
    /// Accepts "C-000042", "c-42", "C42", "#42" and "42" (and full-width forms).
    /// Case ids start at 1, so 0 and negatives are rejected.
    pub fn parse(s: &str) -> Result<CaseId, CaseIdError> {
        let text = normalize_input(s);
        let lower = text.to_ascii_lowercase();
        let digits = lower
            .strip_prefix('c')
            .map(|rest| rest.strip_prefix(['-', '_', ' ']).unwrap_or(rest))
            .or_else(|| lower.strip_prefix('#'))
            .unwrap_or(&lower);
        let invalid = || CaseIdError::Invalid(excerpt(&text));
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        match digits.parse::<i64>() {
            Ok(n) if n > 0 => Ok(CaseId(n)),
            _ => Err(invalid()),
        }
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "C-{:06}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids() {
        for s in [
            "hyogo-pro",
            "a",
            "kinki-2",
            " osaka ",
            "ｈｙｏｇｏ",
            &"a".repeat(64),
        ] {
            assert!(HubId::parse(s).is_ok(), "{s}");
        }
        assert_eq!(HubId::parse(" hyogo-pro ").unwrap().as_str(), "hyogo-pro");
        assert_eq!(HubId::parse(""), Err(HubIdError::Empty));
        assert_eq!(HubId::parse(&"a".repeat(65)), Err(HubIdError::TooLong(65)));
        assert_eq!(
            HubId::parse("Hyogo"),
            Err(HubIdError::InvalidChar {
                id: "Hyogo".into(),
                ch: 'H'
            })
        );
        assert!(matches!(
            HubId::parse("hyogo pro"),
            Err(HubIdError::InvalidChar { ch: ' ', .. })
        ));
        assert!(matches!(
            HubId::parse("hyogo_pro"),
            Err(HubIdError::InvalidChar { ch: '_', .. })
        ));
        assert!(matches!(
            HubId::parse("兵庫"),
            Err(HubIdError::InvalidChar { .. })
        ));
        assert_eq!(
            HubId::parse("-hyogo"),
            Err(HubIdError::EdgeHyphen("-hyogo".into()))
        );
        assert!(matches!(
            HubId::parse("hyogo-"),
            Err(HubIdError::EdgeHyphen(_))
        ));
        assert_eq!(
            HubId::parse("Hyogo").unwrap_err().to_string(),
            "the hub id 「Hyogo」 contains 'H': use lowercase letters, digits and '-', e.g. hyogo-pro"
        );
    }

    #[test]
    fn hub_id_serde() {
        let id = HubId::parse("hyogo-pro").unwrap();
        assert_eq!(id.to_string(), "hyogo-pro");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"hyogo-pro\"");
        assert_eq!(serde_json::from_str::<HubId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<HubId>("\"Bad Id\"").is_err());
    }

    #[test]
    fn user_keys() {
        let k = UserKey::parse("discord:123456").unwrap();
        assert_eq!((k.transport(), k.id()), (Transport::Discord, "123456"));
        assert_eq!(k.to_string(), "discord:123456");
        assert_eq!(
            UserKey::parse(" Terminal:local ").unwrap().to_string(),
            "terminal:local"
        );
        assert_eq!(UserKey::parse("slack:T01:U02").unwrap().id(), "T01:U02");
        assert_eq!(
            UserKey::new(Transport::Slack, "U123").unwrap().to_string(),
            "slack:U123"
        );
        assert_eq!(
            UserKey::parse("discord123"),
            Err(UserKeyError::MissingSeparator("discord123".into()))
        );
        assert_eq!(
            UserKey::parse("line:abc"),
            Err(UserKeyError::UnknownTransport("line".into()))
        );
        assert_eq!(UserKey::parse("discord:"), Err(UserKeyError::EmptyId));
        assert_eq!(
            UserKey::parse("discord:abc").unwrap_err().to_string(),
            "「abc」 is not a Discord user id: Discord ids are digits only, e.g. discord:123456789012345678"
        );
        assert!(UserKey::parse("discord:400000000000000001").is_ok());
        assert!(matches!(
            UserKey::parse("discord:12 34"),
            Err(UserKeyError::InvalidId(_))
        ));
        assert!(matches!(
            UserKey::new(Transport::Discord, "a\u{7}b"),
            Err(UserKeyError::InvalidId(_))
        ));
        assert_eq!(
            UserKey::parse(&format!("discord:{}", "1".repeat(129))),
            Err(UserKeyError::IdTooLong(129))
        );
        assert_eq!(
            UserKey::parse("line:abc").unwrap_err().to_string(),
            "unknown transport 「line」: use terminal, discord or slack"
        );
    }

    #[test]
    fn user_key_serde() {
        let k = UserKey::parse("discord:123456").unwrap();
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, "\"discord:123456\"");
        assert_eq!(serde_json::from_str::<UserKey>(&json).unwrap(), k);
        assert!(serde_json::from_str::<UserKey>("\"nope\"").is_err());
        assert_eq!(
            serde_json::to_string(&Transport::Slack).unwrap(),
            "\"slack\""
        );
    }

    #[test]
    fn numeric_ids() {
        assert_eq!(SessionId(7).to_string(), "7");
        assert_eq!(serde_json::to_string(&SessionId(7)).unwrap(), "7");
        assert_eq!(
            serde_json::from_str::<SessionId>("7").unwrap(),
            SessionId(7)
        );
        assert_eq!(CaseId(42).to_string(), "C-000042");
        assert_eq!(CaseId(1_234_567).to_string(), "C-1234567");
        assert_eq!(serde_json::to_string(&CaseId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<CaseId>("42").unwrap(), CaseId(42));
    }

    #[test]
    fn case_id_parse() {
        for s in [
            "C-42",
            "42",
            "c-000042",
            "C-000042",
            "C42",
            "#42",
            " Ｃ－４２ ",
            "c 42",
        ] {
            assert_eq!(CaseId::parse(s), Ok(CaseId(42)), "{s}");
        }
        assert_eq!(CaseId::parse(&CaseId(42).to_string()), Ok(CaseId(42)));
        for s in [
            "",
            "C-",
            "C-0",
            "0",
            "-42",
            "C-4a",
            "D-42",
            "99999999999999999999",
            "C--42",
        ] {
            assert!(CaseId::parse(s).is_err(), "{s}");
        }
        assert_eq!(
            CaseId::parse("abc").unwrap_err().to_string(),
            "「abc」 is not a case number: type it like C-000042 or 42"
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = HubId::parse(&s);
            let _ = UserKey::parse(&s);
            let _ = UserKey::parse(&format!("discord:{s}"));
            let _ = Transport::parse(&s);
            let _ = CaseId::parse(&s);
        }
    }
}
