-- Leases on the outbox: a worker takes due deliveries by writing its name
-- and a lease time into them, makes the network call outside any
-- transaction, and records the result only while the lease is still its
-- own. A lease that ran out (its worker died) may be taken over by another
-- worker. Both columns are NULL while nobody holds the delivery.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until TEXT;
