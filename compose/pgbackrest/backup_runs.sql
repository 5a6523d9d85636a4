-- Where the scheduler records each backup (database postgres): the last success
-- and its age are what monitoring (pg_monitor) and `consolidate status` read.
SET search_path = pg_catalog, pg_temp;
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
