-- Per-tenant settings (issue 16), and dead webhook deliveries to a tenant's own endpoints.

-- One row per tenant that has settings; the tenant's row going takes its settings along.
-- ``webhooks`` is a JSON array of {"url", "events": [...] (empty: every event), "secret"}.
-- ``proxy`` and webhook secrets are stored as given (wamgr needs them to dial and to sign)
-- and are masked wherever wamgr shows them.
CREATE TABLE wamgr_tenant_settings (
    tenant_id   text PRIMARY KEY REFERENCES wamgr_tenants (tenant_id) ON DELETE CASCADE,
    proxy       text,
    webhooks    jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(webhooks) = 'array'),
    send_rate   double precision CHECK (send_rate > 0),
    send_burst  integer CHECK (send_burst > 0),
    metadata    jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A delivery to a tenant's own endpoint (not one of the instance's global ones): every
-- instance's sender posts it, signed with that endpoint's secret or the global one.
ALTER TABLE wamgr_outbox ADD COLUMN tenant_endpoint boolean NOT NULL DEFAULT false;

-- Dead deliveries (given up, not delivered), newest first, for `GET ?status=dead`.
CREATE INDEX wamgr_outbox_dead ON wamgr_outbox (gave_up_at DESC)
    WHERE gave_up_at IS NOT NULL AND delivered_at IS NULL;

-- Pending deliveries to tenants' own endpoints, which every instance's sender looks for.
CREATE INDEX wamgr_outbox_tenant_pending ON wamgr_outbox (next_attempt_at)
    WHERE tenant_endpoint AND delivered_at IS NULL AND gave_up_at IS NULL;
