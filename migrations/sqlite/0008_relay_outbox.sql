-- The relay's outbox: messages between an owner and the staff of the hub
-- handling their case, on whatever platform each side is (a staff reply
-- from a Slack thread to an owner on Discord, an owner's DM into the case
-- thread, a consent request for a forward). Leased and retried like case
-- deliveries and sent by the sender of `transport`.
--
-- `body` holds the message (as desk texts with their arguments) only while
-- it waits: it is set to NULL once the message is sent, when it fails for
-- good, and when the owner is forgotten. What stays is the ids of the
-- posted messages (`message_ids`, a JSON array), never their text.
CREATE TABLE relays (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id         INTEGER NOT NULL,
    user_key        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    transport       TEXT NOT NULL,
    target          TEXT NOT NULL,
    body            TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    message_ids     TEXT NOT NULL DEFAULT '[]',
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX relays_due ON relays (transport, status, next_attempt_at);
CREATE INDEX relays_by_user ON relays (user_key);
CREATE INDEX relays_by_case ON relays (case_id);
