ALTER TABLE workflows DROP CONSTRAINT workflows_priority_range;
ALTER TABLE workflows DROP COLUMN priority;
