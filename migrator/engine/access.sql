-- access: what the roles step can change, and who may do what (role x schema).

-- name: snapshot
-- (section, key, value) for every object the roles step may touch. ACLs are
-- sorted so that a revoke + re-grant in another order is not reported as a change,
-- and a NULL ACL (the built-in default) is spelled out with acldefault().
SELECT 'role', a.rolname::text, jsonb_build_object(
         'superuser', a.rolsuper, 'inherit', a.rolinherit, 'createrole', a.rolcreaterole,
         'createdb', a.rolcreatedb, 'login', a.rolcanlogin, 'replication', a.rolreplication,
         'bypassrls', a.rolbypassrls, 'connection_limit', a.rolconnlimit,
         'has_password', a.rolpassword IS NOT NULL,
         'settings', (SELECT to_jsonb(s.setconfig) FROM pg_db_role_setting s
                      WHERE s.setrole = a.oid AND s.setdatabase = 0),
         'member_of', (SELECT coalesce(jsonb_agg(m.roleid::regrole::text ORDER BY 1), '[]')
                       FROM pg_auth_members m WHERE m.member = a.oid),
         'members', (SELECT coalesce(jsonb_agg(m.member::regrole::text ORDER BY 1), '[]')
                     FROM pg_auth_members m WHERE m.roleid = a.oid))
FROM pg_authid a WHERE a.rolname !~ '^pg_'
UNION ALL
SELECT 'database', d.datname::text, jsonb_build_object('owner', d.datdba::regrole::text, 'acl', (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]') FROM unnest(coalesce(d.datacl, acldefault('d', d.datdba))::text[]) x))
FROM pg_database d WHERE d.datname = current_database()
UNION ALL
SELECT 'schema', n.nspname::text, jsonb_build_object('owner', n.nspowner::regrole::text, 'acl', (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]') FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))::text[]) x))
FROM pg_namespace n WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
UNION ALL
SELECT 'default privileges', format('for %s in %s on %s', d.defaclrole::regrole,
         CASE d.defaclnamespace WHEN 0 THEN 'all schemas' ELSE d.defaclnamespace::regnamespace::text END,
         CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'routines'
              WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' END),
       (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]') FROM unnest(d.defaclacl::text[]) x)
FROM pg_default_acl d
UNION ALL
SELECT 'event trigger', e.evtname::text, jsonb_build_object(
         'event', e.evtevent, 'function', e.evtfoid::regproc::text, 'enabled', e.evtenabled,
         'tags', to_jsonb(e.evttags), 'owner', e.evtowner::regrole::text)
FROM pg_event_trigger e
UNION ALL
SELECT 'relation', format('%I.%I', n.nspname, c.relname), jsonb_build_object(
         'kind', c.relkind, 'owner', c.relowner::regrole::text,
         'acl', (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]') FROM unnest(coalesce(c.relacl, CASE c.relkind WHEN 'S' THEN acldefault('s', c.relowner) ELSE acldefault('r', c.relowner) END)::text[]) x),
         'columns', (SELECT jsonb_agg(format('%I %s', t.attname, format_type(t.atttypid, t.atttypmod)) ORDER BY t.attnum)
                     FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped
                       AND c.relkind NOT IN ('i', 'I')))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'i', 'I', 'c')
UNION ALL
SELECT 'routine', format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       jsonb_build_object('owner', p.proowner::regrole::text,
                          'acl', (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]') FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))::text[]) x),
                          'security_definer', p.prosecdef, 'config', to_jsonb(p.proconfig), 'body', md5(p.prosrc))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema';

-- name: registry
SELECT 'registry', 'app ' || app, to_jsonb(r) - 'app' FROM consolidation_admin.app_role r
UNION ALL
SELECT 'registry', 'schema ' || schema_name, to_jsonb(s) - 'schema_name' FROM consolidation_admin.app_schema s;

-- name: matrix
-- One row per (role in the parameter's list, non-system schema).
SELECT r.rolname::text, n.nspname::text,
       pg_has_role(r.oid, n.nspowner, 'USAGE') AS owner,
       has_schema_privilege(r.oid, n.oid, 'USAGE') AS usage,
       has_schema_privilege(r.oid, n.oid, 'CREATE') AS "create",
       count(c.oid) AS tables,
       count(c.oid) FILTER (WHERE has_table_privilege(r.oid, c.oid, 'SELECT')) AS readable,
       count(c.oid) FILTER (WHERE has_table_privilege(r.oid, c.oid, 'INSERT')) AS writable
FROM pg_roles r
CROSS JOIN pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
WHERE r.rolname = ANY(%s) AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
GROUP BY r.rolname, r.oid, n.nspname, n.oid, n.nspowner;
