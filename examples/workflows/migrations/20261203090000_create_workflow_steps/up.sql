-- The steps of a workflow, in order. The unique constraint also serves the
-- foreign key, so deleting a workflow does not scan this table.
CREATE TABLE workflow_steps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    name text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT workflow_steps_position UNIQUE (workflow_id, position),
    CONSTRAINT workflow_steps_times CHECK (finished_at IS NULL OR started_at <= finished_at)
);
