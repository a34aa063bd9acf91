-- afasa-ops migration: a tenant sees only its own row of tenants.
-- depends: tenants(id)
--
-- The application role could read every tenant (names, contact data). Row-level security on
-- tenants now shows a tenant its own row, set with set_config('app.tenant_id', ..., true).
-- The workers, which go over every tenant, list the ids (and nothing else) through
-- afasa_tenant_ids(), a SECURITY DEFINER function of the tables' owner; `schema migrate`
-- grants EXECUTE on it to the application role only. ENABLE without FORCE: the owner (the
-- migrating role) keeps seeing every row, so the function does too.

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_self ON tenants;
CREATE POLICY tenant_self ON tenants AS PERMISSIVE FOR SELECT
  USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

DO $$
BEGIN
  -- search_path pinned to this schema: a SECURITY DEFINER function must not resolve names
  -- through a caller's path.
  EXECUTE format(
    'CREATE OR REPLACE FUNCTION afasa_tenant_ids() RETURNS SETOF uuid '
    'LANGUAGE sql STABLE SECURITY DEFINER SET search_path = %I, pg_temp '
    'AS $f$ SELECT id FROM tenants ORDER BY id $f$', current_schema());
END
$$;
REVOKE ALL ON FUNCTION afasa_tenant_ids() FROM PUBLIC;

-- verify:
SELECT c.relrowsecurity AND to_regprocedure('afasa_tenant_ids()') IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_self')
FROM pg_class c WHERE c.oid = to_regclass('tenants');
