-- The answer log, as migrations/sqlite/0003_answer_log.sql. A PostgreSQL
-- database starts empty or from `madoguchi store copy`, which copies these
-- columns, so there are no old snapshots to move out of `state` here.
ALTER TABLE answers ADD COLUMN ix BIGINT;
ALTER TABLE answers ADD COLUMN carried BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN answers_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
