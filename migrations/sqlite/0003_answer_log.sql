-- A session row no longer carries its answers. Before, `sessions.state`
-- held the whole engine state, every answer included, and was rewritten at
-- every turn: a conversation of 20 answers rewrote ~2 KB twenty times. Now
-- the answers live only in `answers` (written once each), and the current
-- answers of a session are rebuilt from that log when it is loaded.
--
-- `answers.ix` is the question's index in the session's pinned script
-- version (rows written before this migration have none and are history
-- only). `sessions.answers_from` is the first answer id that counts for the
-- current answers (a restart moves it past everything said before).
-- `sessions.rev` counts committed steps; a step is written only over the
-- revision it was computed from, so a state held in memory that has gone
-- stale (another process changed or deleted the session) is refused rather
-- than written over newer data.
ALTER TABLE answers ADD COLUMN ix INTEGER;
-- 1 for the rows this migration copies out of old state snapshots: they
-- repeat answers already in the history and are not shown as history.
ALTER TABLE answers ADD COLUMN carried INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN answers_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;

-- Move the current answers of existing sessions out of their snapshots, in
-- the snapshot's order, as carried rows the log rebuild starts from. The
-- question's id is taken from the newest history row with the same value
-- when there is one (for display only; the rebuild uses `ix`).
INSERT INTO answers (session_id, node, value, raw, correction, at, ix, carried)
SELECT s.id,
       COALESCE((SELECT a.node FROM answers a
                 WHERE a.session_id = s.id AND a.value = (j.value -> '$[1]')
                 ORDER BY a.id DESC LIMIT 1), ''),
       j.value -> '$[1]',
       '',
       0,
       s.updated_at,
       j.value ->> '$[0]',
       1
FROM sessions s, json_each(s.state, '$.answers') j
ORDER BY s.id, j.key;

UPDATE sessions SET answers_from = COALESCE(
    (SELECT MIN(a.id) FROM answers a WHERE a.session_id = sessions.id AND a.carried = 1),
    (SELECT COALESCE(MAX(a.id), 0) + 1 FROM answers a));

UPDATE sessions SET state = json_remove(state, '$.answers');
