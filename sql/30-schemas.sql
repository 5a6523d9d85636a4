-- 30 Application schemas, and what every role may do in `extensions` and `public`.
--
-- Each registered schema exists and belongs to its app role (the migrator
-- also hands every object inside over to that role after a restore:
-- migrator.engine.ownership.hand_over_schema). PUBLIC has nothing on it. App roles
-- get USAGE on `extensions` (where Supabase keeps pgvector), nothing more.
--
-- Schema `public`: PostgreSQL gives PUBLIC (every role, including any role
-- created later) USAGE on it, which would let app roles reach whatever lives
-- there (functions callable by PUBLIC, for instance). The first application
-- turns that implicit grant into explicit grants for every role that exists at
-- that moment (so Supabase's roles keep exactly what they had), then revokes
-- it from PUBLIC. From then on a new role gets nothing in `public` unless
-- granted. The same happens with CREATE if PUBLIC still holds it (clusters
-- upgraded from PostgreSQL 14 or older).

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

DO $$
DECLARE
  s record;
  r record;
  priv text;
BEGIN
  FOR s IN SELECT a.schema_name, ar.role_name
           FROM consolidation_admin.app_schema a JOIN consolidation_admin.app_role ar USING (app)
           ORDER BY a.schema_name LOOP
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s.schema_name, s.role_name);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s.schema_name, s.role_name);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', s.schema_name);
  END LOOP;

  FOR r IN SELECT role_name FROM consolidation_admin.app_role WHERE kind = 'app' ORDER BY app LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA extensions TO %I', r.role_name);
  END LOOP;

  FOREACH priv IN ARRAY ARRAY['USAGE', 'CREATE'] LOOP
    CONTINUE WHEN NOT EXISTS (
      SELECT FROM pg_namespace n, aclexplode(n.nspacl) a
      WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = priv);
    FOR r IN SELECT rolname FROM pg_roles
             WHERE NOT rolsuper AND rolname !~ '^pg_'
               AND rolname NOT IN (SELECT role_name FROM consolidation_admin.app_role)
             ORDER BY rolname LOOP
      EXECUTE format('GRANT %s ON SCHEMA public TO %I', priv, r.rolname);
    END LOOP;
    EXECUTE format('REVOKE %s ON SCHEMA public FROM PUBLIC', priv);
  END LOOP;
END
$$;
