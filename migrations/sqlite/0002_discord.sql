-- Chat-transport state (used by the Discord adapter; generic enough for
-- other chat transports). Ids of messages and channels are stored as text.

-- Where a case was posted for one hub, and its discussion thread, so staff
-- actions and relayed messages find the case.
CREATE TABLE case_posts (
    case_id    INTEGER NOT NULL REFERENCES cases(id),
    hub_id     TEXT NOT NULL,
    transport  TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    thread_id  TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (case_id, hub_id, transport)
);
CREATE INDEX case_posts_by_message ON case_posts (transport, message_id);
CREATE INDEX case_posts_by_thread ON case_posts (transport, thread_id);

-- The message that carries an owner's current question. A press on any
-- other message is stale; `data` is what the adapter needs to disable the
-- question's controls later (for Discord: the components as sent).
CREATE TABLE live_prompts (
    user_key   TEXT PRIMARY KEY,
    session_id INTEGER NOT NULL,
    node       TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Staff asked to forward a case to a hub the owner's consent does not
-- cover; the case moves only when the owner says yes.
CREATE TABLE forward_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id      INTEGER NOT NULL REFERENCES cases(id),
    user_key     TEXT NOT NULL,
    to_hub       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    decided_at   TEXT
);
CREATE INDEX forward_requests_by_user ON forward_requests (user_key);

-- Messages relayed between an owner and staff (ids only, never the text),
-- so that an owner's words can be removed from staff threads on request.
CREATE TABLE relay_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id    INTEGER NOT NULL,
    user_key   TEXT NOT NULL,
    direction  TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX relay_messages_by_user ON relay_messages (user_key);
