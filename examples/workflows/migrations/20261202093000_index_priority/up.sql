-- dbamgr:no-transaction
-- Built without blocking writes; CONCURRENTLY cannot run inside a transaction.
CREATE INDEX CONCURRENTLY workflows_pending_by_priority
    ON workflows (priority DESC, created_at)
    WHERE status = 'pending';
