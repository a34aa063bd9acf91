-- Demo tenant, as found: it inserts columns 001_init.sql never creates, so on an empty
-- volume this file fails. Init scripts can disagree with each other.
INSERT INTO tenants (id, name, contact_email, tier, alert_cooldown_sec)
VALUES ('00000000-0000-0000-0000-000000000001', 'demo farm', 'ops@example.org', 'pro', 300)
ON CONFLICT DO NOTHING;
