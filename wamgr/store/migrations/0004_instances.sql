-- One row per instance id in use: the process incarnation that holds it. A lease belongs to
-- one incarnation, so two processes started with one id can never share leases.

-- ``incarnation`` is a random id drawn at each start; ``expires_at`` (database clock) is
-- pushed forward with every lease renewal. A process starts only if it can insert its row
-- or take over one that has expired (its holder crashed, or lost the database).
CREATE TABLE wamgr_instances (
    instance_id  text PRIMARY KEY,
    incarnation  uuid NOT NULL,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- The incarnation that took the lease: NULL for a tool that holds a lease for a moment under
-- a name of its own (``wamgr clear-auth``), and for leases taken before this migration.
ALTER TABLE wamgr_leases ADD COLUMN incarnation uuid;
