-- Timers: things that must happen at a time (a reminder that a case is not
-- claimed, an escalation, a consent request that lapses, a follow-up), kept
-- as rows rather than sleeping tasks, so that they survive a restart and
-- fire once even with several processes on one database.
--
-- `(kind, subject)` names a timer: scheduling the same pair again leaves the
-- stored timer as it is, so every code path that might schedule a timer can
-- do so without checking first. The subject carries whatever makes one
-- occurrence distinct (e.g. `case:12/hub:kyoto-bank/open:…`).
--
-- A due timer is claimed (`claimed`, with its holder and a lease) by one
-- process, which does what the timer is for and then marks it `fired` (or
-- puts it back as `pending` for later); a claim whose lease ran out (the
-- process died) can be claimed again. `cancelled` timers never fire.
-- `payload` is JSON for the handler; it never holds an owner's personal data.
CREATE TABLE timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    case_id     INTEGER REFERENCES cases(id),
    due_at      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL,
    holder      TEXT,
    lease_until TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    note        TEXT,
    created_at  TEXT NOT NULL,
    done_at     TEXT,
    UNIQUE (kind, subject)
);
CREATE INDEX timers_due ON timers (status, due_at);
CREATE INDEX timers_by_case ON timers (case_id);
