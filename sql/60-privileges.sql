-- 60 Who may use each application schema: its owner; the read-only role
-- (read); Supabase's API roles only where the operator opted in.
--
-- consolidation_admin.apply_privileges(schema) is the whole policy for one
-- registered schema. It runs here for every registered schema, and again from
-- migrator.engine.ownership.hand_over_schema() after the migrator restored objects
-- into a schema, so restored and app-created objects end up alike:
--   * PUBLIC: nothing on the schema, no EXECUTE on its routines (now and, via
--     the owner's global default privileges, later);
--   * read-only role(s): USAGE, SELECT on all tables/views/sequences, and the
--     same for objects the owner creates later (default privileges);
--   * anon, authenticated, service_role (Supabase's API roles): nothing,
--     unless the schema is listed in the `api_schemas` variable (comma
--     separated; consolidation.toml [roles] api_schemas, empty by default).
--     Opting in grants what Supabase's guide for exposed custom schemas
--     grants (USAGE, ALL on tables/sequences/routines, same for later
--     objects); row-level security then decides. Removing a schema from the
--     list revokes all of it again.

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

SELECT set_config('consolidation.api_schemas', :'api_schemas', false);

CREATE OR REPLACE FUNCTION consolidation_admin.apply_privileges(p_schema name) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  owner_role name;
  api boolean;
  reader name;
  api_roles constant text := 'anon, authenticated, service_role';
BEGIN
  SELECT r.role_name, s.api_access INTO owner_role, api
    FROM consolidation_admin.app_schema s JOIN consolidation_admin.app_role r USING (app)
   WHERE s.schema_name = p_schema;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'schema "%" is not registered in consolidation_admin.app_schema', p_schema;
  END IF;

  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', p_schema);
  EXECUTE format('REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA %I FROM PUBLIC', p_schema);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON ROUTINES FROM PUBLIC', owner_role);

  FOR reader IN SELECT role_name FROM consolidation_admin.app_role WHERE kind = 'readonly' ORDER BY app LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', p_schema, reader);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', p_schema, reader);
    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', p_schema, reader);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                   owner_role, p_schema, reader);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON SEQUENCES TO %I',
                   owner_role, p_schema, reader);
  END LOOP;

  IF api THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %s', p_schema, api_roles);
    EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO %s', p_schema, api_roles);
    EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %s', p_schema, api_roles);
    EXECUTE format('GRANT ALL ON ALL ROUTINES IN SCHEMA %I TO %s', p_schema, api_roles);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON TABLES TO %s', owner_role, p_schema, api_roles);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON SEQUENCES TO %s', owner_role, p_schema, api_roles);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON ROUTINES TO %s', owner_role, p_schema, api_roles);
  ELSE
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %s', p_schema, api_roles);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %s', p_schema, api_roles);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %s', p_schema, api_roles);
    EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA %I FROM %s', p_schema, api_roles);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I REVOKE ALL ON TABLES FROM %s', owner_role, p_schema, api_roles);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM %s', owner_role, p_schema, api_roles);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I REVOKE ALL ON ROUTINES FROM %s', owner_role, p_schema, api_roles);
  END IF;
END
$$;
REVOKE ALL ON FUNCTION consolidation_admin.apply_privileges(name) FROM PUBLIC;

DO $$
DECLARE
  wanted text[] := coalesce(regexp_split_to_array(nullif(btrim(current_setting('consolidation.api_schemas')), ''),
                                                  '\s*,\s*'), '{}');
  unknown text;
  s record;
BEGIN
  SELECT string_agg(w, ', ') INTO unknown
    FROM unnest(wanted) w WHERE w NOT IN (SELECT schema_name FROM consolidation_admin.app_schema);
  IF unknown IS NOT NULL THEN
    RAISE EXCEPTION 'api_schemas names schemas that are not application schemas: %', unknown;
  END IF;
  UPDATE consolidation_admin.app_schema
     SET api_access = (schema_name::text = ANY (wanted))
   WHERE api_access IS DISTINCT FROM (schema_name::text = ANY (wanted));
  FOR s IN SELECT schema_name FROM consolidation_admin.app_schema ORDER BY schema_name LOOP
    PERFORM consolidation_admin.apply_privileges(s.schema_name);
  END LOOP;
END
$$;
