-- Questions asked again because the owner's input was not understood (the
-- engine's `Effect::Reask`). Only the question's id and the time are kept,
-- never what the owner typed: the KPI report counts them per question so
-- that administrators see which wording owners stumble on. No foreign key:
-- the count stays when an owner's session is deleted (it holds nothing
-- about them).
CREATE TABLE reasks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    node       TEXT NOT NULL,
    ix         INTEGER NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX reasks_by_at ON reasks (at);

-- Posts the bot makes once per period (the monthly KPI summary in the
-- administrators' channel), keyed e.g. `kpi-summary:2026-04`: the row is
-- claimed before posting, so the post is made once across restarts and
-- instances.
CREATE TABLE admin_posts (
    key        TEXT PRIMARY KEY,
    claimed_at TEXT NOT NULL
);
