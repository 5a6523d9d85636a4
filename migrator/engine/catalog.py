"""Catalog queries shared by the steps (assess, schema, copy, verify)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    kind: str               # 'r' ordinary (incl. partitions), 'p' partitioned parent
    persistence: str        # 'p' permanent, 'u' unlogged
    is_partition: bool
    has_vector: bool
    size_bytes: int
    pages: int              # physical heap pages, not the relpages estimate: a resumed copy
                            # must cut the same ctid ranges, and the (quiet) files do not change
    est_rows: int

    @property
    def copies_data(self) -> bool:
        return self.kind == "r"

    def ident(self) -> sql.Composed:
        return sql.Identifier(self.schema, self.name)


TABLES_SQL = """
SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition,
       EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_type et ON et.oid = t.typelem
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND (t.typname = 'vector' OR et.typname = 'vector')) AS has_vector,
       pg_table_size(c.oid), (pg_relation_size(c.oid) / current_setting('block_size')::int)::int,
       greatest(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def tables(conn: psycopg.Connection, schema: str) -> list[TableInfo]:
    return [TableInfo(*row) for row in conn.execute(TABLES_SQL, (schema,)).fetchall()]


def copy_columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    """Columns COPY must carry: not dropped, not generated (the target computes those)."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
        (sql.Identifier(schema, table).as_string(conn),)).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class ExtensionInfo:
    name: str
    schema: str
    version: str
    relocatable: bool


def extensions(conn: psycopg.Connection) -> list[ExtensionInfo]:
    rows = conn.execute(
        "SELECT e.extname, n.nspname, e.extversion, e.extrelocatable FROM pg_extension e"
        " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1").fetchall()
    return [ExtensionInfo(*r) for r in rows]


def sequences(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = %s AND c.relkind = 'S' ORDER BY 1", (schema,)).fetchall()
    return [r[0] for r in rows]


# Everything a schema can hold, so a schema with only operators, collations or range types
# is not taken for empty (and later dropped as ours). Row types of relations and array
# types come with their relation or element type and are not counted twice.
SCHEMA_OBJECTS_SQL = """
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid)
     + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid
          AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
          AND NOT (t.typcategory = 'A' AND t.typelem <> 0))
     + (SELECT count(*) FROM pg_operator WHERE oprnamespace = n.oid)
     + (SELECT count(*) FROM pg_collation WHERE collnamespace = n.oid)
     + (SELECT count(*) FROM pg_opfamily WHERE opfnamespace = n.oid)
     + (SELECT count(*) FROM pg_opclass WHERE opcnamespace = n.oid)
     + (SELECT count(*) FROM pg_conversion WHERE connamespace = n.oid)
     + (SELECT count(*) FROM pg_ts_config WHERE cfgnamespace = n.oid)
     + (SELECT count(*) FROM pg_ts_dict WHERE dictnamespace = n.oid)
     + (SELECT count(*) FROM pg_ts_parser WHERE prsnamespace = n.oid)
     + (SELECT count(*) FROM pg_ts_template WHERE tmplnamespace = n.oid)
     + (SELECT count(*) FROM pg_statistic_ext WHERE stxnamespace = n.oid)
FROM pg_namespace n WHERE n.nspname = %s
"""


def schema_object_count(conn: psycopg.Connection, schema: str) -> int | None:
    """Objects of any kind in a schema; None if it does not exist."""
    row = conn.execute(SCHEMA_OBJECTS_SQL, (schema,)).fetchone()
    return None if row is None else int(row[0])
