-- 55 Monitoring role: the login of postgres_exporter (docs/monitoring.md).
--
-- The role (default `consolidation_monitor`, kind 'monitoring' in the registry)
-- holds pg_monitor and nothing else that reaches data:
--   * pg_monitor: every session in pg_stat_activity, pg_stat_statements, sizes,
--     settings, WAL and archiver statistics; no table data;
--   * no USAGE on any application schema, `extensions`, `public` or the registry
--     (20-roles.sql gives it CONNECT only; the isolation matrix checks it);
--   * read-only transactions, its own CONNECTION LIMIT and statement_timeout (20).
--
-- Its search_path is pinned: pg_catalog first, then `consolidation_monitoring`
-- (below), then pg_temp. Nothing an app role or Supabase's `postgres` owns is
-- ever on it, so no code they wrote runs in the exporter's session; the
-- exporter's custom queries qualify catalog calls with pg_catalog anyway.
--
-- consolidation_monitoring holds one view, owned by the superuser that applies
-- this file and readable only by the monitoring role: `pg_stat_statements`, as
-- the exporter's stat_statements collector names it (unqualified). It is
-- security_invoker, so it shows exactly what pg_monitor shows the reader, and it
-- reads the extension's function wherever Supabase installed it (`extensions`).
--
-- consolidation_monitoring.sequence_usage(): each sequence's last value and bounds,
-- for the sequence headroom metric. pg_monitor does not reach sequence values
-- (pg_sequences shows NULL without USAGE/SELECT on the sequence), so this one
-- function is SECURITY DEFINER, owned by the superuser: it calls only built-in
-- catalog functions with a pinned search_path (no code any app wrote runs in it),
-- returns counters, never rows, and only the monitoring role may execute it.
--
-- n8n with a schema other than public runs `CREATE SCHEMA IF NOT EXISTS` on every
-- pooled connection: the role that holds CREATE on the database for that reason
-- (app_role.database_create) has pg_stat_statements.track_utility off, so those
-- statements do not drown the statement metrics. Its other utility statements
-- (SET, migrations' DDL) are not tracked either; its queries are.

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

-- The schema is on the monitoring role's search_path: whoever owns it could plant
-- functions or operators there that the exporter's unqualified queries would pick up.
-- Supabase's `postgres` may create schemas, so one it made first is refused, not adopted.
DO $$
DECLARE
  owner name;
BEGIN
  SELECT r.rolname INTO owner FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
   WHERE n.nspname = 'consolidation_monitoring' AND NOT r.rolsuper;
  IF owner IS NOT NULL THEN
    RAISE EXCEPTION 'schema consolidation_monitoring exists and belongs to %, not a superuser; drop it '
                    '(it is on the monitoring role''s search_path)', owner;
  END IF;
END
$$;
CREATE SCHEMA IF NOT EXISTS consolidation_monitoring;
REVOKE ALL ON SCHEMA consolidation_monitoring FROM PUBLIC;
COMMENT ON SCHEMA consolidation_monitoring IS
  'consolidation: what the monitoring role reads besides pg_catalog (superuser-owned, read by the monitoring role only)';

CREATE OR REPLACE FUNCTION consolidation_monitoring.sequence_usage()
RETURNS TABLE (schema_name name, sequence_name name, last_value bigint, min_value bigint, max_value bigint,
               increment_by bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT n.nspname, c.relname, pg_catalog.pg_sequence_last_value(c.oid), s.seqmin, s.seqmax, s.seqincrement
    FROM pg_catalog.pg_sequence s
    JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
$$;
REVOKE ALL ON FUNCTION consolidation_monitoring.sequence_usage() FROM PUBLIC;

DO $$
DECLARE
  ext_schema name;
  r record;
BEGIN
  SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_stat_statements';
  IF ext_schema IS NOT NULL THEN
    EXECUTE format('CREATE OR REPLACE VIEW consolidation_monitoring.pg_stat_statements'
                   ' WITH (security_invoker = true) AS SELECT * FROM %I.pg_stat_statements(true)', ext_schema);
    REVOKE ALL ON consolidation_monitoring.pg_stat_statements FROM PUBLIC;
  END IF;

  FOR r IN SELECT role_name FROM consolidation_admin.app_role WHERE kind = 'monitoring' ORDER BY app LOOP
    IF NOT EXISTS (SELECT FROM pg_auth_members
                   WHERE roleid = 'pg_monitor'::regrole AND member = r.role_name::regrole) THEN
      EXECUTE format('GRANT pg_monitor TO %I', r.role_name);
    END IF;
    EXECUTE format('ALTER ROLE %I SET search_path = pg_catalog, consolidation_monitoring, pg_temp', r.role_name);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', r.role_name);
    EXECUTE format('GRANT USAGE ON SCHEMA consolidation_monitoring TO %I', r.role_name);
    EXECUTE format('GRANT EXECUTE ON FUNCTION consolidation_monitoring.sequence_usage() TO %I', r.role_name);
    IF ext_schema IS NOT NULL THEN
      EXECUTE format('GRANT SELECT ON consolidation_monitoring.pg_stat_statements TO %I', r.role_name);
    END IF;
  END LOOP;

  IF EXISTS (SELECT FROM pg_settings WHERE name = 'pg_stat_statements.track_utility') THEN
    FOR r IN SELECT role_name FROM consolidation_admin.app_role WHERE kind = 'app' AND database_create ORDER BY app LOOP
      EXECUTE format('ALTER ROLE %I SET pg_stat_statements.track_utility = off', r.role_name);
    END LOOP;
  END IF;
END
$$;
