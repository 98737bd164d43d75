-- The durable outbound queue: messages an application asked to send, kept until the instance
-- holding the tenant's lease has sent them (or they failed, expired or were cancelled).

-- ``kind`` and ``payload`` say what to send ('text': {"to", "text"}), so later kinds (media,
-- reactions) need no new table. ``seq`` orders one tenant's messages. ``status`` moves
-- queued -> sending -> sent; a row left ``sending`` by an instance that died becomes
-- ``unknown`` (it may or may not have gone out) and is never sent again unless resent.
CREATE TABLE wamgr_outbound (
    message_id      text PRIMARY KEY,
    seq             bigserial NOT NULL UNIQUE,
    tenant_id       text NOT NULL,
    kind            text NOT NULL DEFAULT 'text',
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'expired',
                                      'cancelled', 'unknown')),
    idempotency_key text,
    wa_message_id   text,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    sender          text,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    sending_at      timestamptz,
    sent_at         timestamptz,
    finished_at     timestamptz,
    UNIQUE (tenant_id, idempotency_key)
);

-- The head of each tenant's queue, and the rows caught in ``sending``.
CREATE INDEX wamgr_outbound_queued ON wamgr_outbound (tenant_id, seq) WHERE status = 'queued';
CREATE INDEX wamgr_outbound_expiry ON wamgr_outbound (expires_at) WHERE status = 'queued';
CREATE INDEX wamgr_outbound_sending ON wamgr_outbound (tenant_id) WHERE status = 'sending';
-- Listing by tenant and status, newest first.
CREATE INDEX wamgr_outbound_tenant ON wamgr_outbound (tenant_id, status, seq);
