-- wamgr's first schema: tenants, leases with fencing tokens, status history.

CREATE TABLE wamgr_tenants (
    tenant_id      text PRIMARY KEY,
    desired        text NOT NULL DEFAULT 'connected'
                   CHECK (desired IN ('connected', 'stopped')),
    state          text NOT NULL DEFAULT 'stopped',
    jid            text UNIQUE,
    owner          text,
    attempt        integer NOT NULL DEFAULT 0,
    next_retry_at  timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX wamgr_tenants_desired ON wamgr_tenants (desired);

-- Every grant takes a new number from this sequence: the fencing token.
CREATE SEQUENCE wamgr_lease_tokens;

CREATE TABLE wamgr_leases (
    tenant_id   text PRIMARY KEY,
    owner       text NOT NULL,
    token       bigint NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX wamgr_leases_owner ON wamgr_leases (owner);

CREATE TABLE wamgr_status_history (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    old_state   text,
    new_state   text NOT NULL,
    attempt     integer NOT NULL DEFAULT 0,
    detail      text,
    owner       text,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX wamgr_status_history_tenant ON wamgr_status_history (tenant_id, at);
