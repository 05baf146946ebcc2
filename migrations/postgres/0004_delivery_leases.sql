-- Leases on the outbox, as migrations/sqlite/0004_delivery_leases.sql: a
-- worker takes due deliveries with SELECT … FOR UPDATE SKIP LOCKED and
-- writes its name and a lease time into them in one short statement, makes
-- the network call outside any transaction, and records the result only
-- while the lease is still its own. A lease that ran out (its instance
-- died) may be taken over by another instance.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until TIMESTAMPTZ;
