-- The steps of the seeded workflows (loaded once workflow_steps exists).
INSERT INTO workflow_steps (workflow_id, position, name, status) VALUES
    ('6f1c2a4e-0000-4000-8000-000000000001', 0, 'collect', 'succeeded'),
    ('6f1c2a4e-0000-4000-8000-000000000001', 1, 'render', 'succeeded'),
    ('6f1c2a4e-0000-4000-8000-000000000002', 0, 'fetch', 'running')
ON CONFLICT (workflow_id, position) DO NOTHING;
