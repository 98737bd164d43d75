-- Calls with a reply, for the instance that holds a tenant's lease (a send, a QR, a pair
-- code, clearing credentials asked of another instance). The asker inserts the call for the
-- live holder and wakes it with NOTIFY wamgr_commands; the holder marks it taken, runs it,
-- writes the reply and wakes the asker with NOTIFY wamgr_replies, '<id>'; the asker deletes
-- the row as it reads the reply. Rows left behind (an asker or holder that died) are deleted
-- once well past their deadline.
--
-- UNLOGGED: a call lives for seconds and is worth nothing after a database crash (its asker
-- has given up by then), so its rows skip the WAL and a commit does not wait for a disk
-- flush: four commits per call would otherwise cost four fsyncs (~20 ms on a busy disk).
CREATE UNLOGGED TABLE wamgr_calls (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    kind        text NOT NULL,
    args        jsonb NOT NULL DEFAULT '{}'::jsonb,
    target      text NOT NULL,
    sender      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deadline    timestamptz NOT NULL,
    taken_at    timestamptz,
    replied_at  timestamptz,
    reply       jsonb
);

-- What a holder looks for: calls addressed to it that nobody took yet.
CREATE INDEX wamgr_calls_waiting ON wamgr_calls (target, created_at) WHERE taken_at IS NULL;
CREATE INDEX wamgr_calls_deadline ON wamgr_calls (deadline);
