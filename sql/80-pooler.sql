-- 80 The connection pooler's auth role and its password lookup (docs/pooling.md).
--
-- PgBouncer authenticates app roles with SCRAM through `auth_query`: it logs in
-- as :pooler_role (a plain login role whose only right is to call the function
-- below) and asks for the SCRAM verifier of the role a client names. There is
-- no plain-text userlist of app passwords anywhere.
--
-- The lookup function is SECURITY DEFINER (it reads pg_authid, which only
-- superusers can), owned by the superuser applying these files, with its
-- search_path pinned, and EXECUTE granted to :pooler_role alone. It answers
-- only for the registered application roles (consolidation_admin.app_role,
-- kind 'app'): never for a superuser, the read-only role, Supabase's roles or
-- the auth role itself, so the pooler cannot be used to log in as any of them.

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

SELECT set_config('consolidation.pooler_role', :'pooler_role', true);

DO $$
DECLARE
  r name := current_setting('consolidation.pooler_role');
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'sql/80-pooler.sql must run as a superuser (the lookup function reads pg_authid)';
  END IF;
  IF EXISTS (SELECT FROM pg_roles
             WHERE rolname = r
               AND (rolsuper OR rolname ~ '^(pg_|supabase)'
                    OR rolname IN ('postgres', 'anon', 'authenticated', 'service_role', 'authenticator',
                                   'dashboard_user', 'pgbouncer')))
     OR EXISTS (SELECT FROM consolidation_admin.app_role WHERE role_name = r) THEN
    RAISE EXCEPTION 'pooler role "%" is a superuser, one of Supabase''s roles or an app role; choose another name', r;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
    EXECUTE format('CREATE ROLE %I', r);
  END IF;
  -- One connection for the auth queries, one spare for a restart overlapping.
  EXECUTE format('ALTER ROLE %I LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'
                 ' CONNECTION LIMIT 2', r);
  EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r, '5s');
  EXECUTE format('COMMENT ON ROLE %I IS %L', r, 'consolidation: PgBouncer auth_query role (pooler)');
  EXECUTE format('REVOKE CREATE ON DATABASE %I FROM %I', current_database(), r);
END
$$;

CREATE SCHEMA IF NOT EXISTS consolidation_pooler;
ALTER SCHEMA consolidation_pooler OWNER TO CURRENT_USER;
REVOKE ALL ON SCHEMA consolidation_pooler FROM PUBLIC;
GRANT USAGE ON SCHEMA consolidation_pooler TO :"pooler_role";
COMMENT ON SCHEMA consolidation_pooler IS
  'consolidation: the password lookup PgBouncer''s auth_query calls (pooler role only)';

CREATE OR REPLACE FUNCTION consolidation_pooler.user_lookup(p_user text, OUT usename name, OUT passwd text)
  RETURNS SETOF record
  LANGUAGE sql STABLE STRICT SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT a.rolname, a.rolpassword
    FROM pg_catalog.pg_authid a
    JOIN consolidation_admin.app_role r ON r.role_name = a.rolname AND r.kind = 'app'
   WHERE a.rolname = p_user
     AND a.rolcanlogin AND NOT a.rolsuper AND NOT a.rolreplication AND NOT a.rolbypassrls
     AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > pg_catalog.now())
     AND a.rolpassword LIKE 'SCRAM-SHA-256$%'
$$;
ALTER FUNCTION consolidation_pooler.user_lookup(text) OWNER TO CURRENT_USER;
REVOKE ALL ON FUNCTION consolidation_pooler.user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consolidation_pooler.user_lookup(text) TO :"pooler_role";
