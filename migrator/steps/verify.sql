-- verify: what the object inventories compare, and how an integer key is found.
-- Each inventory query yields (key, value) for the schemas in %(schemas)s. Run with
-- search_path = pg_catalog: names outside pg_catalog print schema-qualified, and
-- verify strips the qualifiers that differ by design (letta. vs letta_agents.).

-- name: inventory.column
-- A partition's identity is its parent's (compared there): PostgreSQL 17 records it on
-- each partition too, older versions only on the parent, so a PostgreSQL 15 source's
-- `events_2024.id` would differ from the same partition on a 17 target (found by the
-- corpus in the stack's cutover).
SELECT c.relname || '.' || a.attname,
       concat_ws(' | ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'not null' END,
                 pg_get_expr(d.adbin, d.adrelid), nullif(a.attgenerated, ''),
                 CASE WHEN NOT c.relispartition THEN nullif(a.attidentity, '') END,
                 col_description(c.oid, a.attnum))
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0
  AND NOT a.attisdropped;

-- name: inventory.constraint
SELECT c.relname || '.' || k.conname, pg_get_constraintdef(k.oid) || CASE WHEN k.convalidated THEN ''
       ELSE ' NOT VALIDATED' END
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s);

-- name: inventory.index
SELECT i.relname, pg_get_indexdef(i.oid) || CASE WHEN x.indisvalid THEN '' ELSE ' INVALID' END
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = ANY(%(schemas)s);

-- name: inventory.trigger
SELECT c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal;

-- name: inventory.view
SELECT c.relname, c.relkind::text || ' ' || pg_get_viewdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('v', 'm');

-- name: inventory.table
SELECT c.relname, concat_ws(' ', c.relkind::text, c.relpersistence::text, 'rls=' || c.relrowsecurity,
       'force=' || c.relforcerowsecurity, obj_description(c.oid, 'pg_class'),
       pg_get_partkeydef(c.oid), pg_get_expr(c.relpartbound, c.oid))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'f');

-- name: inventory.policy
SELECT p.tablename || '.' || p.policyname,
       concat_ws(' | ', p.permissive, p.cmd, array_to_string(p.roles, ','), p.qual, p.with_check)
FROM pg_policies p WHERE p.schemaname = ANY(%(schemas)s);

-- name: inventory.function
-- Part by part rather than pg_get_functiondef: its SET lines are compared below as
-- settings, where verify maps a search_path that the move rewrote, and a body written
-- as text is compared below as routine_source. Keys and values name types
-- schema-qualified (letta.vector / extensions.vector): verify strips those. An
-- SQL-standard body is stored parsed and printed qualified: compared here, stripped.
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       concat_ws(' | ', p.prokind::text, pg_get_function_arguments(p.oid), 'returns ' || pg_get_function_result(p.oid),
                 l.lanname, p.provolatile::text, p.proparallel::text, 'strict=' || p.proisstrict,
                 'security definer=' || p.prosecdef, 'leakproof=' || p.proleakproof, 'cost=' || p.procost,
                 'rows=' || p.prorows,
                 CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) END)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p') AND NOT EXISTS
  (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');

-- name: inventory.routine_source
-- A body written as text (prosrc), compared exactly: the source's as the move rewrites
-- it (migrator/engine/bodies.py) against the target's. Nothing is stripped from it.
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.prosrc
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p') AND p.prosqlbody IS NULL
  AND l.lanname NOT IN ('c', 'internal') AND NOT EXISTS
  (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');

-- name: inventory.routine_setting
-- One row per SET of a routine (key: routine and setting name).
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || split_part(c.setting, '=', 1),
       substr(c.setting, strpos(c.setting, '=') + 1)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace CROSS JOIN LATERAL unnest(p.proconfig) AS c(setting)
WHERE n.nspname = ANY(%(schemas)s) AND NOT EXISTS
  (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');

-- name: inventory.type
SELECT t.typname, t.typtype::text || ' ' || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
       FROM pg_enum WHERE enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod), '')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY(%(schemas)s) AND t.typtype IN ('e', 'd') AND NOT EXISTS
  (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e');

-- name: int_primary_key
-- The single integer primary key column of a table (the parameter: its regclass), to bucket a
-- differing table's rows by key range.
SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
WHERE x.indrelid = %s::regclass AND x.indisprimary AND x.indnkeyatts = 1
  AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype);

-- name: relkind
-- What the target relation is (a table is hashed; anything else is refused by name).
SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
    ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relname OPERATOR(pg_catalog.=) %s
