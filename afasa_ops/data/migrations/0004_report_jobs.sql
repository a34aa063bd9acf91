-- afasa-ops migration: reports become jobs a worker processes (queued -> processing -> ready|failed).
-- depends: reports(tenant_id, status, format, created_at)

-- The AFASA init SQL declares the checks inline, so their names are PostgreSQL's choice:
-- drop every CHECK on reports that mentions status or format, then add named ones.
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN
    SELECT conname FROM pg_constraint
    WHERE conrelid = 'reports'::regclass AND contype = 'c'
      AND (pg_get_constraintdef(oid) ~ '\mstatus\M' OR pg_get_constraintdef(oid) ~ '\mformat\M')
  LOOP
    EXECUTE format('ALTER TABLE reports DROP CONSTRAINT %I', c.conname);
  END LOOP;
END
$$;

ALTER TABLE reports
  ADD CONSTRAINT reports_status_check
    CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
  ADD CONSTRAINT reports_format_check CHECK (format IN ('pdf', 'xlsx', 'csv'));

ALTER TABLE reports
  ADD COLUMN IF NOT EXISTS report_type text NOT NULL DEFAULT 'custom',
  ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS error text,
  ADD COLUMN IF NOT EXISTS started_at timestamptz,
  ADD COLUMN IF NOT EXISTS finished_at timestamptz,
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN IF NOT EXISTS requested_by text,
  ADD COLUMN IF NOT EXISTS correlation_id text;

ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_report_type_check;
ALTER TABLE reports ADD CONSTRAINT reports_report_type_check
  CHECK (report_type IN ('daily', 'weekly', 'monthly', 'custom'));

CREATE INDEX IF NOT EXISTS reports_status_idx ON reports (tenant_id, status, created_at);

-- verify:
SELECT count(*) = 8 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'reports'
  AND column_name IN ('report_type', 'attempts', 'error', 'started_at', 'finished_at',
                      'updated_at', 'requested_by', 'correlation_id');
