-- The dashboard: each instance's capacity (how many tenants it may run), shown beside the
-- leases it holds. NULL: no limit set (or written by an instance older than this column).
ALTER TABLE wamgr_instances ADD COLUMN capacity integer;

-- The dashboard lists a tenant's recent webhook deliveries, newest first.
CREATE INDEX wamgr_outbox_tenant ON wamgr_outbox (tenant_id, id);
