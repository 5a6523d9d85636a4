-- toolschemas: why a schema of the tool's own cannot be trusted, one reason a row (none: trusted).
-- A superuser calls what is in these schemas and writes their tables, so everything in them
-- must belong to a superuser and nobody else may create objects there. Run with the pinned
-- search_path (pg_catalog first). Parameter: the schema name.
WITH s AS (SELECT oid, nspname, nspowner FROM pg_namespace WHERE nspname = %(schema)s),
     su AS (SELECT oid FROM pg_roles WHERE rolsuper)
SELECT 'schema ' || quote_ident(s.nspname) || ' belongs to ' || quote_ident(pg_get_userbyid(s.nspowner))
  FROM s WHERE s.nspowner NOT IN (SELECT oid FROM su)
UNION ALL
SELECT 'role ' || quote_ident(r.rolname) || ' may create objects in schema ' || quote_ident(s.nspname)
  FROM s, pg_roles r WHERE NOT r.rolsuper AND has_schema_privilege(r.oid, s.oid, 'CREATE')
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' belongs to ' || quote_ident(pg_get_userbyid(c.relowner))
  FROM pg_class c JOIN s ON c.relnamespace = s.oid WHERE c.relowner NOT IN (SELECT oid FROM su)
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text || ' belongs to ' || quote_ident(pg_get_userbyid(p.proowner))
  FROM pg_proc p JOIN s ON p.pronamespace = s.oid WHERE p.proowner NOT IN (SELECT oid FROM su)
UNION ALL
SELECT 'type ' || t.oid::regtype::text || ' belongs to ' || quote_ident(pg_get_userbyid(t.typowner))
  FROM pg_type t JOIN s ON t.typnamespace = s.oid WHERE t.typowner NOT IN (SELECT oid FROM su)
UNION ALL
SELECT 'operator ' || o.oid::regoperator::text || ' belongs to ' || quote_ident(pg_get_userbyid(o.oprowner))
  FROM pg_operator o JOIN s ON o.oprnamespace = s.oid WHERE o.oprowner NOT IN (SELECT oid FROM su)
UNION ALL
SELECT 'event trigger ' || quote_ident(e.evtname) || ' calls ' || e.evtfoid::regprocedure::text
       || ', which does not belong to a superuser'
  FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN s ON p.pronamespace = s.oid
 WHERE p.proowner NOT IN (SELECT oid FROM su)
LIMIT 1;
