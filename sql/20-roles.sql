-- 20 Login roles: one per registered application, plus the read-only role.
--
-- Every registered role is a plain login role: never superuser, no BYPASSRLS,
-- no CREATEROLE / CREATEDB / REPLICATION, member of no other role and with no
-- members (so nobody acts as an app except the app, and superusers), its own
-- CONNECTION LIMIT and statement_timeout so one app cannot starve the others.
-- App roles resolve their own schemas first, then `extensions` (pgvector), so
-- apps need no code change.
--
-- Passwords are not in this file: the migrator sets them from
-- env/app-roles.env (by hand: `\password <role>` in psql).
--
-- Database privileges: CONNECT for every registered role, TEMPORARY for all but the
-- monitoring role, CREATE
-- only where app_role.database_create says so. PUBLIC keeps CONNECT and
-- TEMPORARY on the database: Supabase's own services log in through them, and
-- neither reaches any data. PUBLIC never has CREATE on it.

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

DO $$
DECLARE
  r record;
  m record;
BEGIN
  FOR r IN SELECT * FROM consolidation_admin.app_role ORDER BY app LOOP
    -- Never take over a superuser or one of Supabase's roles.
    IF EXISTS (SELECT FROM pg_roles
               WHERE rolname = r.role_name
                 AND (rolsuper OR rolname ~ '^(pg_|supabase)'
                      OR rolname IN ('postgres', 'anon', 'authenticated', 'service_role', 'authenticator',
                                     'dashboard_user', 'pgbouncer'))) THEN
      RAISE EXCEPTION 'role "%" (app %) is a superuser or one of Supabase''s roles; choose another name',
        r.role_name, r.app;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.role_name) THEN
      EXECUTE format('CREATE ROLE %I', r.role_name);
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'
                   ' CONNECTION LIMIT %s', r.role_name, r.connection_limit);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r.role_name, r.statement_timeout);
    EXECUTE format('COMMENT ON ROLE %I IS %L', r.role_name,
                   format('consolidation: %s role of %s', r.kind, r.app));

    -- No inherited privileges in either direction (the read-only and monitoring roles keep
    -- pg_monitor, see 50 and 55).
    FOR m IN SELECT a.roleid::regrole AS granted, a.grantor::regrole AS grantor
             FROM pg_auth_members a
             WHERE a.member = r.role_name::regrole
               AND NOT (r.kind IN ('readonly', 'monitoring') AND a.roleid = 'pg_monitor'::regrole) LOOP
      EXECUTE format('REVOKE %s FROM %I GRANTED BY %s', m.granted, r.role_name, m.grantor);
    END LOOP;
    FOR m IN SELECT a.member::regrole AS member, a.grantor::regrole AS grantor
             FROM pg_auth_members a WHERE a.roleid = r.role_name::regrole LOOP
      EXECUTE format('REVOKE %I FROM %s GRANTED BY %s', r.role_name, m.member, m.grantor);
    END LOOP;

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r.role_name);
    IF r.kind = 'monitoring' THEN   -- the exporter only reads statistics: no temporary tables of its own
      EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM %I', current_database(), r.role_name);
    ELSE
      EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), r.role_name);
    END IF;
    IF r.database_create THEN
      EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), r.role_name);
    ELSE
      EXECUTE format('REVOKE CREATE ON DATABASE %I FROM %I', current_database(), r.role_name);
    END IF;
  END LOOP;

  -- Each app role: its own schemas in registry order, then extensions.
  FOR r IN SELECT ar.role_name, string_agg(quote_ident(s.schema_name), ', ' ORDER BY s.search_order, s.schema_name) AS path
           FROM consolidation_admin.app_role ar
           JOIN consolidation_admin.app_schema s USING (app)
           WHERE ar.kind = 'app'
           GROUP BY ar.role_name LOOP
    EXECUTE format('ALTER ROLE %I SET search_path = %s, extensions', r.role_name, r.path);
  END LOOP;

  EXECUTE format('REVOKE CREATE ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
