-- ownership: every owned object of one schema, as (order, ALTER keyword, qualified name,
-- owner), for those not owned by the role yet. Names are quoted by the server. Sequences
-- behind identity/serial columns follow their table; array, multirange and row types follow
-- their base; objects that belong to an extension are left to it.
WITH s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = %(schema)s)
SELECT * FROM (
  SELECT CASE WHEN c.relkind = 'S' THEN 2 ELSE 1 END AS ord,
         CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'f' THEN 'FOREIGN TABLE'
                        WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                        WHEN 'c' THEN 'TYPE' END AS kind,
         quote_ident(s.nspname) || '.' || quote_ident(c.relname) AS name, c.relowner AS owner
  FROM pg_class c JOIN s ON c.relnamespace = s.oid
  WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'c') AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    AND NOT (c.relkind = 'S' AND EXISTS (
          SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT 3, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         quote_ident(s.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proowner
  FROM pg_proc p JOIN s ON p.pronamespace = s.oid WHERE NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
  UNION ALL
  SELECT 4, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
         quote_ident(s.nspname) || '.' || quote_ident(t.typname), t.typowner
  FROM pg_type t JOIN s ON t.typnamespace = s.oid
  WHERE t.typrelid = 0 AND t.typtype <> 'm' AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid AND e.deptype = 'e')
    AND NOT EXISTS (SELECT FROM pg_type b WHERE b.typarray = t.oid)
  UNION ALL
  SELECT 5, 'COLLATION', quote_ident(s.nspname) || '.' || quote_ident(o.collname), o.collowner
  FROM pg_collation o JOIN s ON o.collnamespace = s.oid
  UNION ALL
  SELECT 5, 'CONVERSION', quote_ident(s.nspname) || '.' || quote_ident(o.conname), o.conowner
  FROM pg_conversion o JOIN s ON o.connamespace = s.oid
  UNION ALL
  SELECT 5, 'OPERATOR', o.oid::regoperator::text, o.oprowner
  FROM pg_operator o JOIN s ON o.oprnamespace = s.oid WHERE NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_operator'::regclass AND e.objid = o.oid AND e.deptype = 'e')
  UNION ALL
  SELECT 5, 'OPERATOR FAMILY', quote_ident(s.nspname) || '.' || quote_ident(o.opfname) || ' USING ' || quote_ident(a.amname), o.opfowner
  FROM pg_opfamily o JOIN s ON o.opfnamespace = s.oid JOIN pg_am a ON a.oid = o.opfmethod WHERE NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_opfamily'::regclass AND e.objid = o.oid AND e.deptype = 'e')
  UNION ALL
  SELECT 5, 'OPERATOR CLASS', quote_ident(s.nspname) || '.' || quote_ident(o.opcname) || ' USING ' || quote_ident(a.amname), o.opcowner
  FROM pg_opclass o JOIN s ON o.opcnamespace = s.oid JOIN pg_am a ON a.oid = o.opcmethod WHERE NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_opclass'::regclass AND e.objid = o.oid AND e.deptype = 'e')
  UNION ALL
  SELECT 5, 'TEXT SEARCH CONFIGURATION', quote_ident(s.nspname) || '.' || quote_ident(o.cfgname), o.cfgowner
  FROM pg_ts_config o JOIN s ON o.cfgnamespace = s.oid
  UNION ALL
  SELECT 5, 'TEXT SEARCH DICTIONARY', quote_ident(s.nspname) || '.' || quote_ident(o.dictname), o.dictowner
  FROM pg_ts_dict o JOIN s ON o.dictnamespace = s.oid
  UNION ALL
  SELECT 5, 'STATISTICS', quote_ident(s.nspname) || '.' || quote_ident(o.stxname), o.stxowner
  FROM pg_statistic_ext o JOIN s ON o.stxnamespace = s.oid
) objects
WHERE owner IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
ORDER BY ord, name;
