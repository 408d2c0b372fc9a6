-- dbamgr:no-transaction
DROP INDEX CONCURRENTLY workflows_pending_by_priority;
