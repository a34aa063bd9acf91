-- Demo tenant and its admin user (the tenant the functional checks act as). Unlike the
-- field's seed file, this one only uses columns 001_init.sql creates, so a fresh volume
-- initialises; the stack's defects are in its compose file and RLS, not here.
INSERT INTO tenants (id, name)
VALUES ('00000000-0000-0000-0000-000000000001', 'demo farm')
ON CONFLICT DO NOTHING;

INSERT INTO users (id, tenant_id, email, role)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001',
        'ops@example.org', 'tenant_admin')
ON CONFLICT DO NOTHING;
