-- A case row is about 2 kB (headline, both summaries, the route as JSON),
-- just over the size (about 2 kB) at which PostgreSQL compresses a row's
-- long values with pglz before storing it, which costs more CPU than the
-- rest of writing the row. Rows up to a page's size stay as they are,
-- uncompressed, in the table itself: cases are few, and their pages are
-- read whole when a case is shown anyway.
ALTER TABLE cases SET (toast_tuple_target = 8160);
