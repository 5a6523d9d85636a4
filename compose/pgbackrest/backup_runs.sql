-- Where the scheduler records each backup (database postgres): the last success
-- and its age are what monitoring (pg_monitor) and `consolidate status` read.
SET search_path = pg_catalog, pg_temp;
-- A superuser inserts a row here after every backup: a schema that someone else created
-- first (a trigger on their table would run as the superuser) is refused, not adopted
-- (the migrator checks the same of every tool schema: migrator/engine/toolschemas.sql).
DO $$
DECLARE
  why text;
BEGIN
  SELECT 'it belongs to ' || pg_get_userbyid(n.nspowner) INTO why FROM pg_namespace n
   WHERE n.nspname = '_consolidation_ops' AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = n.nspowner);
  IF why IS NULL THEN
    SELECT 'relation ' || c.oid::regclass::text || ' belongs to ' || pg_get_userbyid(c.relowner) INTO why
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = '_consolidation_ops' AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = c.relowner) LIMIT 1;
  END IF;
  IF why IS NOT NULL THEN
    RAISE EXCEPTION 'schema _consolidation_ops cannot be trusted: %; drop it (a superuser writes into it)', why;
  END IF;
END
$$;
CREATE SCHEMA IF NOT EXISTS _consolidation_ops;
REVOKE ALL ON SCHEMA _consolidation_ops FROM PUBLIC;
CREATE TABLE IF NOT EXISTS _consolidation_ops.backup_runs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('full', 'diff', 'incr')),
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  ok          boolean NOT NULL,
  label       text,            -- pgBackRest's backup label, when it made one
  error       text             -- the last line pgBackRest printed, when it failed
);
CREATE OR REPLACE VIEW _consolidation_ops.last_backup AS
  SELECT kind, max(finished_at) AS finished_at,
         extract(epoch FROM now() - max(finished_at))::bigint AS age_seconds
    FROM _consolidation_ops.backup_runs WHERE ok GROUP BY kind;
GRANT USAGE ON SCHEMA _consolidation_ops TO pg_monitor;
GRANT SELECT ON _consolidation_ops.backup_runs, _consolidation_ops.last_backup TO pg_monitor;
