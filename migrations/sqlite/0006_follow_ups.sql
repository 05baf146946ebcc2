-- Step 5 of the guide (定着支援): after staff close a case as matched or
-- hired, the owner is offered a follow-up at the intervals in routing.yaml
-- (`follow_up.after_months`). One row per case and interval; its status
-- moves forward only (scheduled → offered → reminded → answered, declined,
-- unanswered or cancelled), each move a compare-and-set, so an offer or a
-- reminder happens exactly once whatever restarts or instances there are.
CREATE TABLE follow_ups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The matched case being followed up.
    case_id     INTEGER NOT NULL,
    user_key    TEXT NOT NULL,
    -- 1 for the first interval, 2 for the second, …
    seq         INTEGER NOT NULL,
    due_at      TEXT NOT NULL,
    status      TEXT NOT NULL,
    -- The follow-up dialog started for the owner (set when offered).
    session_id  INTEGER,
    -- The case that carries the answers to the step-5 hub (set when
    -- answered and consented).
    answer_case INTEGER,
    offered_at  TEXT,
    reminded_at TEXT,
    decided_at  TEXT,
    updated_at  TEXT NOT NULL,
    UNIQUE (case_id, seq)
);
CREATE INDEX follow_ups_by_status ON follow_ups (status, due_at);
CREATE INDEX follow_ups_by_user ON follow_ups (user_key);
CREATE INDEX follow_ups_by_session ON follow_ups (session_id);
