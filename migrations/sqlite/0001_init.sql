-- madoguchi schema, SQLite flavour. Times are stored as RFC 3339 text in
-- UTC by sqlx, which sorts in time order.

-- The exact sources of every script version a session ran on, so that a
-- session can finish on its version after the files change.
CREATE TABLE script_versions (
    version      TEXT PRIMARY KEY,
    script_id    TEXT NOT NULL,
    lang         TEXT NOT NULL,
    script_name  TEXT NOT NULL,
    script_text  TEXT NOT NULL,
    routing_name TEXT NOT NULL,
    routing_text TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_key     TEXT NOT NULL,
    script_id    TEXT NOT NULL,
    lang         TEXT NOT NULL,
    version      TEXT NOT NULL REFERENCES script_versions(version),
    status       TEXT NOT NULL,
    current_node TEXT NOT NULL,
    -- The engine's state (JSON): a snapshot for resuming; `answers` holds
    -- the full history.
    state        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_key, id);
CREATE INDEX sessions_by_status ON sessions (status);

-- Every answer ever given; a correction is a new row, so history is kept.
-- `value` is NULL when an answer was withdrawn.
CREATE TABLE answers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    node       TEXT NOT NULL,
    value      TEXT,
    raw        TEXT NOT NULL,
    correction INTEGER NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX answers_by_session ON answers (session_id, id);

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id       INTEGER NOT NULL,
    user_key         TEXT NOT NULL,
    version          TEXT NOT NULL,
    headline         TEXT NOT NULL,
    summary_plain    TEXT NOT NULL,
    summary_markdown TEXT NOT NULL,
    route            TEXT NOT NULL,
    hub_id           TEXT NOT NULL,
    tags             TEXT NOT NULL,
    step             INTEGER NOT NULL,
    status           TEXT NOT NULL,
    claimed_by       TEXT,
    outcome          TEXT,
    -- Set when the owner asked for deletion: the contents are blanked and
    -- the row stays as a tombstone for the audit trail.
    forgotten        INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX cases_by_hub ON cases (hub_id, status);
CREATE INDEX cases_by_user ON cases (user_key);

-- The outbox: one row per case and delivery target.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id         INTEGER NOT NULL REFERENCES cases(id),
    hub_id          TEXT NOT NULL,
    transport       TEXT NOT NULL,
    target          TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    external_id     TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    UNIQUE (case_id, hub_id, transport)
);
CREATE INDEX deliveries_due ON deliveries (transport, status, next_attempt_at);

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
    outcome     TEXT NOT NULL,
    error       TEXT,
    at          TEXT NOT NULL
);

-- Consent decisions and forwarding records. Kept when an owner's other
-- data is deleted (APPI: records of third-party provision, three years).
CREATE TABLE consents (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    case_id    INTEGER,
    user_key   TEXT NOT NULL,
    granted    INTEGER NOT NULL,
    recipients TEXT NOT NULL,
    items      TEXT NOT NULL,
    wording    TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX consents_by_user ON consents (user_key);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id INTEGER,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX audit_by_case ON audit_log (case_id, id);
