-- A source schema's definitions as one line per object, hashed by schemafp.py:
-- relations, columns and defaults, constraints, indexes, triggers, types, routines,
-- views' queries, policies and rules, and the extensions the schema step installs.
-- Catalog only: the pg_get_*def functions deparse, they run no app code. Every call
-- and operator is qualified (superuser sessions pin search_path to pg_catalog too).
SELECT pg_catalog.concat_ws(' ', 'rel', c.relname, c.relkind, c.relreplident, c.relpersistence)
FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'col', c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.attgenerated, pg_catalog.pg_get_expr(d.adbin, d.adrelid))
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid
     AND d.adnum OPERATOR(pg_catalog.=) a.attnum
WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'con', conname, pg_catalog.pg_get_constraintdef(oid))
FROM pg_catalog.pg_constraint WHERE connamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'idx', pg_catalog.pg_get_indexdef(i.indexrelid))
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'trg', t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled)
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'typ', t.typname, t.typtype,
       (SELECT pg_catalog.string_agg(e.enumlabel::pg_catalog.text, ',' ORDER BY e.enumsortorder)
        FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid))
FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION ALL
-- Signature, result, kind and volatility as well as the body: the schema step moves
-- the whole definition (CREATE OR REPLACE can change all but the signature).
SELECT pg_catalog.concat_ws(' ', 'fun', p.oid::pg_catalog.regprocedure, pg_catalog.md5(p.prosrc), p.proconfig,
       p.prorettype::pg_catalog.regtype, p.prokind, p.provolatile, p.prosecdef, p.proretset)
FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION ALL
-- A view's query can change without its columns changing (CREATE OR REPLACE VIEW).
SELECT pg_catalog.concat_ws(' ', 'view', c.relname, pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)))
FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
  AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['v', 'm']::pg_catalog."char"[])
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'pol', c.relname, p.polname, p.polcmd, p.polpermissive,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION ALL
SELECT pg_catalog.concat_ws(' ', 'rule', c.relname, r.rulename, pg_catalog.md5(pg_catalog.pg_get_ruledef(r.oid)))
FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.ev_class
WHERE c.relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
  AND r.rulename OPERATOR(pg_catalog.<>) '_RETURN'
UNION ALL
-- The schema step installs the source's extensions on the target: a new one counts.
SELECT pg_catalog.concat_ws(' ', 'ext', e.extname, e.extversion, e.extnamespace::pg_catalog.regnamespace)
FROM pg_catalog.pg_extension e
