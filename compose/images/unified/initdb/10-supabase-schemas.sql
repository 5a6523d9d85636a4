-- Supabase's system schemas and extensions (all extensions live in `extensions`).
CREATE SCHEMA extensions;
CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
CREATE SCHEMA storage AUTHORIZATION supabase_storage_admin;
CREATE SCHEMA graphql;
CREATE SCHEMA graphql_public;
CREATE SCHEMA realtime;
CREATE SCHEMA vault;

CREATE EXTENSION "uuid-ossp"         WITH SCHEMA extensions;
CREATE EXTENSION pgcrypto            WITH SCHEMA extensions;
CREATE EXTENSION pg_stat_statements  WITH SCHEMA extensions;
CREATE EXTENSION vector              WITH SCHEMA extensions;

GRANT USAGE ON SCHEMA public     TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions TO supabase_auth_admin, supabase_storage_admin;
GRANT USAGE ON SCHEMA graphql_public TO postgres, anon, authenticated, service_role;
GRANT ALL ON SCHEMA public TO postgres;

-- What Supabase does so that the API roles see objects created in public.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES    TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

CREATE PUBLICATION supabase_realtime;
