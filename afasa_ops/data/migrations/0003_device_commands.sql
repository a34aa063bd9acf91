-- afasa-ops migration: enable/disable commands issued against devices, with their outcome.
-- depends: tenants(id)

CREATE TABLE IF NOT EXISTS device_commands (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  device_id uuid NOT NULL REFERENCES devices(id),
  command text NOT NULL CHECK (command IN ('enable', 'disable')),
  status text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'completed', 'failed')),
  requested_by text,
  requested_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  error text,
  correlation_id text,
  result text
);

CREATE INDEX IF NOT EXISTS device_commands_device_idx
  ON device_commands (tenant_id, device_id, requested_at);

-- verify:
SELECT to_regclass('device_commands') IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'device_commands_device_idx');
