-- post-data: what an interrupted final pass may have left in a source's target schemas,
-- in an order that drops dependants first (foreign keys before the keys they use). Each
-- section yields (kind, schema, table, name, always): pg_restore's tag is "<table> <name>"
-- for constraints and "<name>" otherwise, so what the journal says a table built early
-- (its TOC ids) is recognised exactly and kept; `always` = never built early, always dropped.
-- Inherited constraints and partitions' indexes go with their parent's.

-- name: leftovers.constraint
SELECT 'CONSTRAINT', n.nspname::text, c.relname::text, k.conname::text, k.contype = 'f' FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(schemas)s) AND k.contype IN ('f', 'p', 'u', 'x') AND k.conparentid = 0 AND k.coninhcount = 0 ORDER BY k.contype <> 'f';

-- name: leftovers.index
SELECT 'INDEX', n.nspname::text, NULL, i.relname::text, false FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = ANY(%(schemas)s) AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x')) AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.oid);

-- name: leftovers.trigger
SELECT 'TRIGGER', n.nspname::text, c.relname::text, t.tgname::text, true FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal AND t.tgparentid = 0;

-- name: leftovers.policy
SELECT 'POLICY', schemaname::text, tablename::text, policyname::text, true FROM pg_policies WHERE schemaname = ANY(%(schemas)s);

-- name: leftovers.rule
SELECT 'RULE', n.nspname::text, c.relname::text, r.rulename::text, true FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(schemas)s) AND r.rulename <> '_RETURN';

-- name: leftovers.statistics
SELECT 'STATISTICS', n.nspname::text, NULL, s.stxname::text, true FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE n.nspname = ANY(%(schemas)s);

-- name: table_of_entry
-- Which table each early-buildable TOC entry belongs to (index or primary/unique/exclusion
-- key of a plain, unpartitioned table), by the tag pg_restore prints for it.
SELECT 'INDEX', i.relname::text, t.relname::text FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = %(schema)s AND t.relkind = 'r' AND NOT t.relispartition
UNION ALL
SELECT 'CONSTRAINT', t.relname::text || ' ' || k.conname::text, t.relname::text FROM pg_constraint k
  JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = %(schema)s AND k.contype IN ('p', 'u', 'x') AND t.relkind = 'r' AND NOT t.relispartition

-- name: inheritance_parents
-- Tables with children: their indexes wait for the final pass.
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relkind = 'r' AND c.relhassubclass

-- name: sequence_schema
-- Which of a source's target schemas holds the sequence (rules may have moved it).
SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND c.relname = %s AND n.nspname = ANY(%s)

-- name: matviews
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'm' AND n.nspname = ANY(%s) ORDER BY 1, 2

-- name: analyze_tables
-- Every table of a schema, and whether it has extended statistics (ANALYZEd again after them).
SELECT c.relname, EXISTS (SELECT FROM pg_statistic_ext s WHERE s.stxrelid = c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')
