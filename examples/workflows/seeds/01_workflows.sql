-- Test data for `dbamgr verify`: loaded once the workflows table exists, so that
-- every later migration is checked against rows, not an empty table.
INSERT INTO workflows (id, name, status, payload) VALUES
    ('6f1c2a4e-0000-4000-8000-000000000001', 'nightly report', 'succeeded', '{"day": "2026-12-01"}'),
    ('6f1c2a4e-0000-4000-8000-000000000002', 'import customers', 'running', '{"batch": 7}'),
    ('6f1c2a4e-0000-4000-8000-000000000003', 'send invoices', 'pending', '{}')
ON CONFLICT (id) DO NOTHING;
