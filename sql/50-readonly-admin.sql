-- 50 Read-only administration role (open question 2: what cross-schema access
-- do administrators get?).
--
-- Answer: one login role (default `consolidation_readonly`) reads every
-- application schema, for support and monitoring, and writes nothing:
--   * SELECT on every table, view and sequence of every app schema, including
--     tables the apps create later (default privileges FOR ROLE <app role>,
--     set in 60-privileges.sql);
--   * pg_monitor: server statistics (pg_stat_activity of all sessions,
--     pg_stat_statements, sizes), no table data;
--   * default_transaction_read_only = on as a seat belt;
--   * nothing in auth, storage, vault, public or any other schema.
--
-- It reads what the apps wrote, and apps can write code: an RLS policy or a
-- view that calls the app's own function would run that function with the
-- reader's rights (which reach every app) and could send what it reads out
-- (pg_notify works in a read-only transaction). So by default the role
--   * has row_security = off: a query that a policy would filter fails with
--     an error instead of running the policy;
--   * has restrict_nonsystem_relation_kind = 'view, foreign-table': reading an
--     app-defined view fails instead of running it (catalog views still work;
--     pg_stat_statements is read through its function,
--     extensions.pg_stat_statements(true)). To read an app's view on purpose,
--     `SET restrict_nonsystem_relation_kind = ''` in that session, knowing the
--     view's functions then run with this role's rights.
-- Nothing else can write across schemas: each app role writes only its own
-- schemas; only a superuser (the migrator as supabase_admin, during a run)
-- writes everywhere.

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT role_name FROM consolidation_admin.app_role WHERE kind = 'readonly' ORDER BY app LOOP
    IF NOT EXISTS (SELECT FROM pg_auth_members
                   WHERE roleid = 'pg_monitor'::regrole AND member = r.role_name::regrole) THEN
      EXECUTE format('GRANT pg_monitor TO %I', r.role_name);
    END IF;
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', r.role_name);
    EXECUTE format('ALTER ROLE %I SET row_security = off', r.role_name);
    IF EXISTS (SELECT FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind') THEN
      EXECUTE format('ALTER ROLE %I SET restrict_nonsystem_relation_kind = %L', r.role_name, 'view, foreign-table');
    END IF;
  END LOOP;
END
$$;
