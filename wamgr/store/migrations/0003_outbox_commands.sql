-- The webhook outbox (events written in the transaction of the change they report) and
-- commands addressed to the instance that runs a tenant.

-- One row per event and endpoint. ``webhook_id`` is the event's Standard Webhooks id, the same
-- on every attempt (and for every endpoint); ``body`` is the exact JSON text that is signed.
CREATE TABLE wamgr_outbox (
    id              bigserial PRIMARY KEY,
    webhook_id      text NOT NULL,
    endpoint        text NOT NULL,
    event_type      text NOT NULL,
    tenant_id       text,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    claimed_until   timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    UNIQUE (webhook_id, endpoint)
);

-- What the delivery workers look for: rows neither delivered nor given up, by due time.
CREATE INDEX wamgr_outbox_pending ON wamgr_outbox (endpoint, next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX wamgr_outbox_created ON wamgr_outbox (created_at);

-- Endpoints that answered 410 Gone: no event is written for them until re-enabled.
CREATE TABLE wamgr_webhook_endpoints (
    url             text PRIMARY KEY,
    disabled_at     timestamptz,
    disabled_reason text
);

-- A command for the instance ``target`` (NULL: any instance) to run on a tenant; the sender
-- wakes it with NOTIFY wamgr_commands. Commands older than a minute are dropped unread.
CREATE TABLE wamgr_commands (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    command     text NOT NULL CHECK (command IN ('connect', 'reconnect', 'disconnect', 'logout')),
    target      text,
    sender      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX wamgr_commands_target ON wamgr_commands (target, id);
