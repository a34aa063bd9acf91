-- afasa-ops migration: a transactional outbox. A row is written in the same transaction as the
-- depends: tenants(id)
-- change it announces; a relay publishes it to JetStream (Nats-Msg-Id = event_id) and stamps
-- published_at.

CREATE TABLE IF NOT EXISTS event_outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  event_id uuid NOT NULL UNIQUE,
  subject text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz,
  attempts int NOT NULL DEFAULT 0,
  last_error text
);

CREATE INDEX IF NOT EXISTS event_outbox_unpublished_idx
  ON event_outbox (tenant_id, created_at) WHERE published_at IS NULL;

-- verify:
SELECT to_regclass('event_outbox') IS NOT NULL;
