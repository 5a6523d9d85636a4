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
-- Nothing else can write across schemas: each app role writes only its own
-- schemas; only a superuser (the migrator as supabase_admin, during a run)
-- writes everywhere.

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
  END LOOP;
END
$$;
