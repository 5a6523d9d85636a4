-- Supabase's role layout as supabase/postgres 17 ships it (the parts the
-- consolidation meets). Runs once, as supabase_admin, at first start.
\set pgpass `echo "$POSTGRES_PASSWORD"`

-- `postgres` is privileged but NOT a superuser on Supabase.
CREATE ROLE postgres LOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS PASSWORD :'pgpass';

CREATE ROLE anon          NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role  NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD :'pgpass';
GRANT anon, authenticated, service_role TO authenticator;

CREATE ROLE supabase_auth_admin    LOGIN NOINHERIT CREATEROLE PASSWORD :'pgpass';
CREATE ROLE supabase_storage_admin LOGIN NOINHERIT CREATEROLE PASSWORD :'pgpass';
CREATE ROLE dashboard_user NOLOGIN CREATEDB CREATEROLE REPLICATION;

ALTER ROLE anon          SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER ROLE postgres       SET search_path = "$user", public, extensions;
ALTER ROLE supabase_admin SET search_path = "$user", public, extensions;
