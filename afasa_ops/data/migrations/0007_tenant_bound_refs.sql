-- afasa-ops migration: references between tenant tables stay inside one tenant.
-- depends: cameras(id, tenant_id), snapshots(id, tenant_id, camera_id),
-- depends: detections(id, tenant_id, snapshot_id), assessments(id, tenant_id, detection_id)
--
-- A plain REFERENCES devices(id) accepts another tenant's device (foreign-key checks bypass
-- row-level security), so with tenant A set an insert could point at B's rows. Each
-- reference gets a composite key (tenant_id, <ref>) -> parent (tenant_id, id). The parents
-- get UNIQUE (tenant_id, id) for it. Rows that already cross tenants stop the migration with
-- a message naming the table and one offending row; nothing is changed then.

DO $$
DECLARE
  ref record;
  bad record;
BEGIN
  FOR ref IN
    SELECT * FROM (VALUES
      ('device_commands', 'device_id', 'devices'),
      ('snapshots', 'camera_id', 'cameras'),
      ('detections', 'snapshot_id', 'snapshots'),
      ('assessments', 'detection_id', 'detections')
    ) AS r(child, col, parent)
  LOOP
    EXECUTE format(
      'SELECT count(*) AS n, min(c.id::text) AS example FROM %I c JOIN %I p ON p.id = c.%I '
      'WHERE p.tenant_id <> c.tenant_id', ref.child, ref.parent, ref.col)
      INTO bad;
    IF bad.n > 0 THEN
      RAISE EXCEPTION '% % rows reference a % row of another tenant (e.g. % id %)',
        bad.n, ref.child, ref.parent, ref.child, bad.example
        USING HINT = format('correct or delete those %s rows (their %s must belong to their '
                            'tenant_id), then run `afasa-ops schema migrate` again',
                            ref.child, ref.col);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ref.parent::regclass
                   AND conname = ref.parent || '_tenant_id_id_key') THEN
      EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I UNIQUE (tenant_id, id)',
                     ref.parent, ref.parent || '_tenant_id_id_key');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ref.child::regclass
                   AND conname = ref.child || '_' || ref.col || '_same_tenant') THEN
      EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (tenant_id, %I) '
                     'REFERENCES %I (tenant_id, id)',
                     ref.child, ref.child || '_' || ref.col || '_same_tenant', ref.col, ref.parent);
    END IF;
  END LOOP;
END
$$;

-- verify:
SELECT count(*) = 4 FROM pg_constraint
WHERE contype = 'f' AND conname IN ('device_commands_device_id_same_tenant',
  'snapshots_camera_id_same_tenant', 'detections_snapshot_id_same_tenant',
  'assessments_detection_id_same_tenant');
