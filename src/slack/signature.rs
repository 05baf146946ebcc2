//! Verifying requests of Slack's Events API over HTTP (`X-Slack-Signature`,
//! version `v0`): HMAC-SHA256 of `v0:{timestamp}:{body}` with the app's
//! signing secret, compared in constant time, and a timestamp no further
//! than five minutes from now (so a captured request cannot be replayed
//! later). Pure: the time is passed in.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from the clock (Slack's advice).
pub const WINDOW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no X-Slack-Request-Timestamp or X-Slack-Signature header")]
    Missing,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes from now; check the server's clock")]
    Stale,
    #[error("the request signature does not match; check SLACK_SIGNING_SECRET (Basic Information → Signing Secret)")]
    Mismatch,
}

/// Checks one request. `timestamp` and `signature` are the header values
/// as received, `body` the raw body bytes, `now` Unix seconds.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let t: i64 = ts
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now - t).abs() > WINDOW_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret, ts.trim(), body);
    // Constant time: how much of a guess matched must not show in timing.
    if expected.as_bytes().ct_eq(sig.trim().as_bytes()).into() {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 64);
    out.push_str("v0=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Slack retries an event it thinks was not received (`X-Slack-Retry-Num`)
/// with the same `event_id`; the last few thousand ids are remembered so a
/// retry is acknowledged without being handled twice.
pub struct SeenEvents {
    order: std::collections::VecDeque<String>,
    set: std::collections::HashSet<String>,
    cap: usize,
}

impl SeenEvents {
    pub fn new(cap: usize) -> SeenEvents {
        SeenEvents {
            order: Default::default(),
            set: Default::default(),
            cap: cap.max(1),
        }
    }

    /// True the first time an id is seen.
    pub fn first(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.set.insert(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example ("Verifying requests from Slack").
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIG);
        let now = 1531420618 + 10;
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now),
            Ok(())
        );
    }

    #[test]
    fn tampering_a_wrong_secret_and_old_requests_are_refused() {
        let now = 1531420618;
        let mut body = BODY.to_string();
        body.push('x');
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), body.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another secret", Some(TS), Some(SIG), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        // Five minutes either way is accepted; one second more is not.
        assert!(verify(
            SECRET,
            Some(TS),
            Some(SIG),
            BODY.as_bytes(),
            now + WINDOW_SECS
        )
        .is_ok());
        assert_eq!(
            verify(
                SECRET,
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                now + WINDOW_SECS + 1
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(
                SECRET,
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                now - WINDOW_SECS - 1
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY.as_bytes(), now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(SECRET, Some("soon"), Some(SIG), BODY.as_bytes(), now),
            Err(SignatureError::BadTimestamp)
        );
        // A truncated signature is a mismatch, not a prefix match.
        assert_eq!(
            verify(SECRET, Some(TS), Some(&SIG[..20]), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn retries_are_seen_once() {
        let mut s = SeenEvents::new(2);
        assert!(s.first("Ev1"));
        assert!(!s.first("Ev1"));
        assert!(s.first("Ev2"));
        assert!(s.first("Ev3"));
        // The oldest is forgotten beyond the capacity.
        assert!(s.first("Ev1"));
        assert!(!s.first("Ev3"));
    }
}
