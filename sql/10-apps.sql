-- 10 The applications: role names, limits and schemas (the layout of DESIGN.md),
-- plus the read-only role and the monitoring role (postgres_exporter's login).
--
-- The only per-application file. Values come from psql variables; the
-- migrator fills them from consolidation.toml [roles] (defaults in docs/roles.md).
--
-- n8n gets CREATE on the database: with a schema other than public, n8n runs
-- `CREATE SCHEMA IF NOT EXISTS n8n` on every pooled connection, and PostgreSQL
-- checks the database CREATE privilege even when the schema exists. The
-- isolation guard (40) keeps that privilege from reaching anything else.
--
-- A new application: copy this pattern into its own file 1x-app-<name>.sql
-- (docs/roles.md "Adding an application schema").

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

INSERT INTO consolidation_admin.app_role AS r
       (app, role_name, kind, connection_limit, statement_timeout, database_create)
VALUES ('n8n',      :'n8n_role',      'app',      :'n8n_connection_limit',      :'n8n_statement_timeout',      true),
       ('letta',    :'letta_role',    'app',      :'letta_connection_limit',    :'letta_statement_timeout',    false),
       ('rag',      :'rag_role',      'app',      :'rag_connection_limit',      :'rag_statement_timeout',      false),
       ('readonly', :'readonly_role', 'readonly', :'readonly_connection_limit', :'readonly_statement_timeout', false),
       ('monitoring', :'monitoring_role', 'monitoring', :'monitoring_connection_limit', :'monitoring_statement_timeout', false)
ON CONFLICT (app) DO UPDATE
   SET role_name = EXCLUDED.role_name, kind = EXCLUDED.kind, connection_limit = EXCLUDED.connection_limit,
       statement_timeout = EXCLUDED.statement_timeout, database_create = EXCLUDED.database_create
 WHERE (r.role_name, r.kind, r.connection_limit, r.statement_timeout, r.database_create)
       IS DISTINCT FROM (EXCLUDED.role_name, EXCLUDED.kind, EXCLUDED.connection_limit,
                         EXCLUDED.statement_timeout, EXCLUDED.database_create);

INSERT INTO consolidation_admin.app_schema AS s (schema_name, app, search_order)
VALUES ('n8n',              'n8n',   1),
       ('letta_agents',     'letta', 1),
       ('letta_embeddings', 'letta', 2),
       ('rag_documents',    'rag',   1),
       ('rag_embeddings',   'rag',   2)
ON CONFLICT (schema_name) DO UPDATE
   SET app = EXCLUDED.app, search_order = EXCLUDED.search_order
 WHERE (s.app, s.search_order) IS DISTINCT FROM (EXCLUDED.app, EXCLUDED.search_order);
