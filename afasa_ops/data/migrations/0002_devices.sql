-- afasa-ops migration: the devices registry (UbiBot channels and others, mapped to ThingsBoard).
-- depends: tenants(id)

CREATE TABLE IF NOT EXISTS devices (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  provider text NOT NULL,
  external_id text NOT NULL,
  name text,
  kind text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  desired_enabled boolean NOT NULL DEFAULT true,
  reported_enabled boolean,
  thingsboard_id text,
  last_seen_at timestamptz,
  synced_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT devices_tenant_provider_external_key UNIQUE (tenant_id, provider, external_id)
);

-- verify:
SELECT EXISTS (
  SELECT 1 FROM pg_constraint
  WHERE conrelid = to_regclass('devices') AND conname = 'devices_tenant_provider_external_key'
);
