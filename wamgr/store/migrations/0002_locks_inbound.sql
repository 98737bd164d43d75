-- Processing locks for the embedding application, and inbound message ids (dedup).

-- Every claim takes a new number from this sequence: the lock's fencing token.
CREATE SEQUENCE wamgr_lock_tokens;

CREATE TABLE wamgr_processing_locks (
    key         text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    token       bigint NOT NULL,
    owner       text,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- The sweeper deletes expired locks.
CREATE INDEX wamgr_processing_locks_expires ON wamgr_processing_locks (expires_at);

-- One row per inbound message id a tenant has seen, kept for the retention window.
CREATE TABLE wamgr_inbound (
    tenant_id   text NOT NULL,
    message_id  text NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id)
);

-- The sweeper deletes ids older than the retention window.
CREATE INDEX wamgr_inbound_seen_at ON wamgr_inbound (seen_at);
