-- Receipts move a sent outbound message on: ``sent`` -> ``delivered`` -> ``read`` (a
-- ``played`` receipt counts as read). The receipt names WhatsApp's message ids, so the rows
-- are found by ``wa_message_id`` within their tenant.
ALTER TABLE wamgr_outbound DROP CONSTRAINT IF EXISTS wamgr_outbound_status_check;
ALTER TABLE wamgr_outbound ADD CONSTRAINT wamgr_outbound_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'expired',
                      'cancelled', 'unknown'));
CREATE INDEX wamgr_outbound_wa_id ON wamgr_outbound (tenant_id, wa_message_id)
    WHERE wa_message_id IS NOT NULL;

-- A media message's file, apart from ``payload`` (which holds the rest: to, mime, caption...),
-- so that reading rows (the queue's heads, listings, state changes) never reads the file.
ALTER TABLE wamgr_outbound ADD COLUMN media bytea;
