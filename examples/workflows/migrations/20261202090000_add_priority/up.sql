-- A constant default is stored in the catalog (PostgreSQL 11+): no table rewrite.
ALTER TABLE workflows
    ADD COLUMN priority smallint NOT NULL DEFAULT 0;

-- NOT VALID takes a brief lock and skips the scan; VALIDATE scans without
-- blocking writes.
ALTER TABLE workflows
    ADD CONSTRAINT workflows_priority_range CHECK (priority BETWEEN -10 AND 10) NOT VALID;
ALTER TABLE workflows VALIDATE CONSTRAINT workflows_priority_range;
