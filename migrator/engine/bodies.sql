-- bodies: what the body rewrite reads. Run with search_path = pg_catalog (every migrator
-- session): regprocedure and format_type print names outside pg_catalog qualified.

-- name: routines
-- Every routine of the given schemas that is not an extension's, with what PL/pgSQL's
-- parser needs to read its body: kind, set-returning, and for the result and each
-- argument a stand-in type (libpg_query's PL/pgSQL parser looks types up only in
-- pg_catalog: a composite is read as `record`, anything else of the app's as `text`,
-- which is all it needs to tell rows from scalars).
WITH standin AS (
  SELECT t.oid, CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN format_type(t.oid, NULL)
                     WHEN t.typtype = 'c' THEN 'record'
                     WHEN t.typcategory = 'A' THEN 'text[]'
                     ELSE 'text' END AS name
  FROM pg_type t
)
SELECT p.oid::regprocedure::text, p.proname::text, l.lanname::text, p.prosrc,
       p.prosqlbody IS NOT NULL, p.prokind::text, p.proretset,
       (SELECT s.name FROM standin s WHERE s.oid = p.prorettype),
       coalesce(p.proargmodes::text[], array_fill('i'::text, ARRAY[p.pronargs::int])),
       coalesce(p.proargnames, array_fill(''::text, ARRAY[p.pronargs::int])),
       ARRAY(SELECT s.name FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY a(oid, i)
             JOIN standin s ON s.oid = a.oid ORDER BY a.i)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p', 'w')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.deptype = 'e')
ORDER BY 1;

-- name: relations
-- Relations of the moved schema and what places them: a table goes where its route
-- says, an index or an owned sequence with its table (ALTER TABLE ... SET SCHEMA takes
-- them along), views and the rest stay in the default target schema.
SELECT c.relname::text, c.relkind::text,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'),
       CASE WHEN c.relkind IN ('r', 'p') THEN c.relname::text
            WHEN c.relkind IN ('i', 'I') THEN (SELECT t.relname::text FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
                                               WHERE x.indexrelid = c.oid)
            WHEN c.relkind = 'S' THEN (SELECT t.relname::text FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                                       WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                                       LIMIT 1)
       END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind <> 't';

-- name: types
-- Types of the moved schema: a table's row type goes with the table, an array with its
-- element type, enums, domains, composite types with the tables that use them (below).
SELECT t.typname::text, t.typtype::text,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'),
       (SELECT c.relname::text FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c'),
       (SELECT e.typname::text FROM pg_type e WHERE e.oid = t.typelem AND t.typcategory = 'A'
          AND e.typnamespace = t.typnamespace)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %(schema)s;

-- name: followers
-- The rule of schema.move_followers, read on the source: an enum, domain, composite type
-- or free-standing sequence used only by tables routed to one other schema moves there.
-- Here: each such object with the tables that use it (column types, column defaults).
WITH objs AS (
  SELECT t.oid, 'pg_type'::regclass AS cls, t.typname AS name
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = %(schema)s AND (t.typtype IN ('e', 'd')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  UNION ALL
  SELECT c.oid, 'pg_class'::regclass, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = %(schema)s AND c.relkind = 'S'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('a', 'i'))
)
SELECT o.name::text, array_agg(DISTINCT tc.relname::text)
FROM objs o
JOIN pg_depend d ON d.refclassid = o.cls AND d.refobjid = o.oid
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
JOIN pg_class tc ON tc.oid = CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid ELSE ad.adrelid END
WHERE tc.relkind IN ('r', 'p')
GROUP BY o.name;

-- name: functions
SELECT p.proname::text,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(schema)s;

-- name: operators
SELECT o.oprname::text,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e')
FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname = %(schema)s;

-- name: collations
SELECT c.collname::text,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_collation'::regclass AND d.objid = c.oid AND d.deptype = 'e')
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE n.nspname = %(schema)s;

-- name: exists
-- Is the object a rewritten reference names there (checked in the scratch database,
-- after the move, for every reference the source's catalog placed)?
SELECT CASE %(kind)s
  WHEN 'relation' THEN EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = %(schema)s AND c.relname = %(name)s)
  WHEN 'type' THEN EXISTS (SELECT FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                           WHERE n.nspname = %(schema)s AND t.typname = %(name)s)
  WHEN 'function' THEN EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                               WHERE n.nspname = %(schema)s AND p.proname = %(name)s)
  WHEN 'operator' THEN EXISTS (SELECT FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                               WHERE n.nspname = %(schema)s AND o.oprname = %(name)s)
  WHEN 'collation' THEN EXISTS (SELECT FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
                                WHERE n.nspname = %(schema)s AND c.collname = %(name)s)
END;

-- name: functiondef
SELECT pg_get_functiondef(p.oid), p.prosrc FROM pg_proc p WHERE p.oid = %(oid)s::regprocedure;
