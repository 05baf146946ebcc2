-- A session row (about 1.3 kB, most of it the state JSON) is updated at
-- every turn of its consultation. With the default fillfactor of 100 its
-- page is full, so most updates cannot be HOT (heap-only: the new row
-- version on the same page, no index touched) and write a new entry into
-- each of the table's three indexes, and the table bloats. Leaving half of
-- each page free lets the new version land beside the old one; PostgreSQL
-- prunes the dead versions of a page when it needs the room. Applies to
-- pages written from now on.
ALTER TABLE sessions SET (fillfactor = 50);
