-- 00 Registry: which login role each application uses and which schemas it owns.
--
-- Every later file reads these two tables instead of repeating names: the
-- roles (20), the schemas (30), the isolation guard (40, generated from them)
-- and the privileges (60). An operator can read the layout back with
--   SELECT * FROM consolidation_admin.app_role;
--   SELECT * FROM consolidation_admin.app_schema;
-- Only superusers can: the schema grants nothing to anyone.
--
-- Apply all files in order, in one transaction (docs/roles.md "Roles and schema
-- isolation" has the psql command). Every file is safe to apply again.

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

CREATE SCHEMA IF NOT EXISTS consolidation_admin;
REVOKE ALL ON SCHEMA consolidation_admin FROM PUBLIC;
COMMENT ON SCHEMA consolidation_admin IS
  'consolidation: registry of application roles and schemas, isolation guard (superusers only)';

CREATE TABLE IF NOT EXISTS consolidation_admin.app_role (
  app               text PRIMARY KEY CHECK (app ~ '^[a-z][a-z0-9_]*$'),
  role_name         name NOT NULL UNIQUE,
  -- 'app': owns schemas; 'readonly': reads every app schema, writes nothing;
  -- 'monitoring': pg_monitor only, reads no app schema (the metrics exporter, 55-monitoring.sql).
  kind              text NOT NULL CONSTRAINT app_role_kind_check CHECK (kind IN ('app', 'readonly', 'monitoring')),
  connection_limit  integer NOT NULL CHECK (connection_limit >= 1),
  statement_timeout text NOT NULL,
  -- CREATE on the database (n8n needs it, see 10-apps.sql); the guard (40) still applies.
  database_create   boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS consolidation_admin.app_schema (
  schema_name  name PRIMARY KEY,
  app          text NOT NULL REFERENCES consolidation_admin.app_role (app) ON UPDATE CASCADE,
  -- position in the owner's default search_path (then `extensions`).
  search_order integer NOT NULL,
  -- Supabase's API roles may use this schema (opt-in, set by 60-privileges.sql).
  api_access   boolean NOT NULL DEFAULT false
);

-- Names are plain lower-case identifiers: the isolation guard (40) embeds them
-- in the body of a function it generates, and nothing else may ever reach it.
DO $$
BEGIN
  -- Registries made before the 'monitoring' kind existed: widen the check.
  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'app_role_kind_check'
                   AND conrelid = 'consolidation_admin.app_role'::regclass
                   AND pg_get_constraintdef(oid) LIKE '%monitoring%') THEN
    ALTER TABLE consolidation_admin.app_role DROP CONSTRAINT IF EXISTS app_role_kind_check;
    ALTER TABLE consolidation_admin.app_role
      ADD CONSTRAINT app_role_kind_check CHECK (kind IN ('app', 'readonly', 'monitoring'));
  END IF;
  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'app_role_role_name_plain'
                   AND conrelid = 'consolidation_admin.app_role'::regclass) THEN
    ALTER TABLE consolidation_admin.app_role
      ADD CONSTRAINT app_role_role_name_plain CHECK (role_name::text ~ '^[a-z_][a-z0-9_]{0,62}$');
  END IF;
  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'app_schema_schema_name_plain'
                   AND conrelid = 'consolidation_admin.app_schema'::regclass) THEN
    ALTER TABLE consolidation_admin.app_schema
      ADD CONSTRAINT app_schema_schema_name_plain CHECK (schema_name::text ~ '^[a-z_][a-z0-9_]{0,62}$');
  END IF;
END
$$;
