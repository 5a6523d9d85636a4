-- name: ddl
-- The migrator's journal (schema _consolidation on the target): what each run did, so that
-- the next one resumes. Safe to run again; an older journal gains what is missing.
CREATE SCHEMA IF NOT EXISTS _consolidation;
REVOKE ALL ON SCHEMA _consolidation FROM PUBLIC;
CREATE TABLE IF NOT EXISTS _consolidation.steps (
  source text NOT NULL, step text NOT NULL, status text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, detail jsonb,
  PRIMARY KEY (source, step));
CREATE TABLE IF NOT EXISTS _consolidation.units (
  source text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL, chunk integer NOT NULL,
  rows bigint NOT NULL, bytes bigint NOT NULL, seconds double precision,
  finished_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, schema_name, table_name, chunk));
-- Tables whose own indexes and keys were built (and ANALYZEd) early, while the copy went
-- on (post_data.EarlyIndexBuilder): the final pass skips those TOC entries.
CREATE TABLE IF NOT EXISTS _consolidation.finished_tables (
  source text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL, toc_ids integer[] NOT NULL,
  seconds double precision, finished_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, schema_name, table_name));
-- How a source's tables were cut into units: a resumed copy must cut them the same way.
CREATE TABLE IF NOT EXISTS _consolidation.copy_plans (
  source text PRIMARY KEY, split_mb integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS _consolidation.created_schemas (
  schema_name text PRIMARY KEY, source text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS _consolidation.events (
  id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), source text, step text, message text);
-- A loader role (migrator/engine/loader.py) records its own source's units and tables, in the
-- same transaction as their data, and nothing else: app code that runs as one loader
-- cannot mark another source's work as done. (A CHECK, not a policy: loaders bypass
-- RLS, and COPY sessions run with session_replication_role = replica, without triggers.)
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['units', 'finished_tables'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                   WHERE conrelid OPERATOR(pg_catalog.=) pg_catalog.format('_consolidation.%I', t)::pg_catalog.regclass
                     AND conname OPERATOR(pg_catalog.=) 'written_by_own_loader') THEN
      EXECUTE pg_catalog.format('ALTER TABLE _consolidation.%I ADD CONSTRAINT written_by_own_loader CHECK ('
                                'CURRENT_USER::pg_catalog.text OPERATOR(pg_catalog.!~~) %L'
                                ' OR CURRENT_USER::pg_catalog.text OPERATOR(pg_catalog.=) (%L OPERATOR(pg_catalog.||) source))',
                                t, 'consolidation\_loader\_%', 'consolidation_loader_');
    END IF;
  END LOOP;
END
$$;
-- What each source's migration was planned as (its mapping, and the options that shaped
-- it): a rerun whose mapping differs is refused instead of skipping what the old one did.
CREATE TABLE IF NOT EXISTS _consolidation.plans (
  source text PRIMARY KEY, mapping jsonb NOT NULL, options jsonb NOT NULL DEFAULT '{}',
  recorded_at timestamptz NOT NULL DEFAULT now());

-- name: leftover_sessions
-- Sessions of loader roles opened by a migrate (verify reads through readers of its own),
-- left by an interrupted run: ended before this run starts. The parameter: the loaders' LIKE pattern.
SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(a.pid)) FROM pg_catalog.pg_stat_activity a
WHERE a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
  AND a.usename::pg_catalog.text OPERATOR(pg_catalog.~~) %s
  AND a.application_name OPERATOR(pg_catalog.=) 'consolidation-migrator'
