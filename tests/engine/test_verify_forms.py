"""verify's cross-version normalisation of deparsed definitions (pure logic)."""

from migrator.steps.verify import cross_version_form


def test_cross_version_form_folds_deparse_differences():
    pg15 = "CHECK (((event)::text = ANY ((ARRAY['on'::character varying, 'off'::character varying])::text[])))"
    pg17 = "CHECK (((event)::text = ANY (ARRAY[('on'::character varying)::text, ('off'::character varying)::text])))"
    assert cross_version_form(pg15) == cross_version_form(pg17)
    assert cross_version_form(pg15) != cross_version_form(pg15.replace("'off'", "'of'"))
    assert cross_version_form("SELECT t.a FROM t", qualifiers=True) == cross_version_form("SELECT a FROM t")


# --- the per-column checksum form (migrator/engine/checksums.py FORM, docs/engine.md) --------------

import pytest  # noqa: E402

from migrator.engine import checksums  # noqa: E402
from migrator.errors import ConfigError  # noqa: E402
from migrator.ops import appdump
from tests.support import start_postgres  # noqa: E402

# Every kind of column the form treats differently: binary send forms, floats, numeric as
# text, built-in arrays, enum, composite, domains, a type printed as text (inet, money).
TYPES_SQL = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 100);
CREATE DOMAIN mood_d AS mood;
CREATE TABLE every_type (id int, b bool, i2 int2, i8 int8, f4 real, f8 float8, n numeric, t text,
  vc varchar(20), bp char(5), ba bytea, d date, ts timestamp, tz timestamptz, iv interval, tm time,
  ttz timetz, u uuid, j json, jb jsonb, ia int[], ta text[], na numeric[], fa float8[], e mood, p pair,
  st short_text, md mood_d, ip inet, m money, "_row" text, "weird ""name"" col" int);
INSERT INTO every_type VALUES
  (1, true, -2, 9223372036854775807, -0.0, 'NaN', 1.50, 'héllo', 'x', 'ab', '\\x00ff', '2024-02-29',
   '2024-01-01 12:00:00.123456', '2024-01-01 12:00:00+05', '1 mon 2 days 03:00:00', '23:59:59.999999',
   '12:00+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": [1, 2]}', '{"b": 1, "a": [1, 2]}',
   '{1,NULL,3}', '{"a b",NULL}', '{1.0,2.00}', '{-0,Infinity}', 'ok', '(1,"x y")', 'short', 'sad',
   '10.0.0.1/8', 12.34, 'row', 7),
  (2, NULL, NULL, NULL, 'Infinity', '-Infinity', 'NaN', '', NULL, NULL, '', 'infinity', '-infinity', NULL,
   '-1 year', NULL, NULL, NULL, '[]', '{}', '{}', '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, false, 0, 0, 3.4e38, 1e-300, -123456789012345678901234567890.123456789, repeat('x', 100000),
   NULL, NULL, NULL, '1999-12-31', NULL, '1970-01-01 00:00:00+00', NULL, NULL, NULL, NULL, 'null', 'null',
   NULL, NULL, NULL, NULL, 'sad', '(,)', NULL, NULL, '::1', -0.01, NULL, NULL);
"""


@pytest.fixture(scope="module")
def servers(images):
    """A PostgreSQL 15 (the legacy n8n image) and a 17 with pgvector (the legacy Letta image)."""
    pg15 = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="forms")
    pg17 = start_postgres(images["LETTA_DB_IMAGE"], user="letta", dbname="forms")
    yield pg15, pg17
    pg15.container.stop()
    pg17.container.stop()


def digest(conn, table: str, schema: str = "public", form: str = checksums.FORM) -> str:
    conn.execute(checksums.PINNED)
    rows, value = checksums.table_hash(conn, schema, table, form)
    return f"{rows}:{value}"


@pytest.mark.integration
def test_pg15_and_pg17_hash_the_same_rows_equal(servers):
    hashes = []
    for server in servers:
        with server.connect() as conn:
            conn.execute(TYPES_SQL)
            hashes.append((digest(conn, "every_type"), digest(conn, "every_type", form=checksums.LEGACY_FORM)))
    assert hashes[0] == hashes[1]
    assert hashes[0][0].startswith("3:") and hashes[0][0] != hashes[0][1]


def pair_differs(conn, column_type: str, left: list[str], right: list[str]) -> bool:
    """Whether two one-column tables holding these SQL literals hash differently."""
    for name, values in (("lhs", left), ("rhs", right)):
        conn.execute(f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (k int, v {column_type})")
        for k, value in enumerate(values):
            conn.execute(f"INSERT INTO {name} VALUES ({k}, {value})")
    return digest(conn, "lhs") != digest(conn, "rhs")


@pytest.mark.integration
def test_the_form_tells_apart_what_differs_and_only_that(servers):
    _, pg17 = servers
    with pg17.connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS extensions; CREATE EXTENSION IF NOT EXISTS vector SCHEMA extensions;"
                     " SET search_path = public, extensions")
        # one bit: 1.0 is 0x3f800000, 1.0000001 is 0x3f800001
        assert conn.execute("SELECT float4send(1.0000001::real) = '\\x3f800001'::bytea").fetchone()[0]
        assert pair_differs(conn, "vector(3)", ["'[1,2,3]'"], ["'[1.0000001,2,3]'"])
        assert not pair_differs(conn, "vector(3)", ["'[1,2,3]'"], ["'[1.0, 2.00, 3]'"])
        # -0.0 and 0.0: different (they print differently), in a vector as in a float
        assert pair_differs(conn, "vector(2)", ["'[0,1]'"], ["'[-0,1]'"])
        assert pair_differs(conn, "float8", ["0"], ["'-0'::float8"])
        # NaN: unlike any number, like any other NaN (-NaN has its sign bit set)
        assert conn.execute("SELECT float8send('NaN'::float8) <> float8send(-'NaN'::float8)").fetchone()[0]
        assert pair_differs(conn, "float8", ["'NaN'"], ["0"])
        assert not pair_differs(conn, "float8", ["'NaN'"], ["-'NaN'::float8"])
        assert not pair_differs(conn, "real", ["'NaN'"], ["-'NaN'::real"])
        # jsonb normalizes key order and spaces: equal; json keeps its text: different
        assert not pair_differs(conn, "jsonb", ["'{\"a\": 1, \"b\": 2}'"], ["'{\"b\":2,\"a\":1}'"])
        assert pair_differs(conn, "json", ["'{\"a\": 1, \"b\": 2}'"], ["'{\"b\":2,\"a\":1}'"])
        # numeric keeps its scale: 1.0 and 1.00 differ
        assert pair_differs(conn, "numeric", ["1.0"], ["1.00"])
        # NULL is not the empty string; values swapped between rows are a difference
        assert pair_differs(conn, "text", ["NULL"], ["''"])
        assert pair_differs(conn, "text", ["'x'", "'y'"], ["'y'", "'x'"])


@pytest.mark.integration
def test_vector_is_sent_binary_only_when_the_name_cannot_be_shadowed(servers):
    """pgvector's schema is found in pg_extension (the legacy Letta has it in the app's own
    schema): the same vectors hash equal wherever it lives; a second vector_send there (an
    app's overload) makes the form print the column instead of calling it."""
    _, pg17 = servers
    with pg17.connect() as conn:
        conn.execute("CREATE DATABASE forms_app")
    with pg17.connect(dbname="forms_app") as app, pg17.connect() as target:
        app.execute("CREATE SCHEMA letta; CREATE EXTENSION vector SCHEMA letta;"
                    " CREATE TABLE letta.p (id int, e letta.vector(3));"
                    " INSERT INTO letta.p VALUES (1, '[1,-0,3.5]'), (2, NULL)")
        target.execute("CREATE SCHEMA IF NOT EXISTS extensions; CREATE EXTENSION IF NOT EXISTS vector SCHEMA extensions;"
                       " CREATE TABLE public.p (id int, e extensions.vector(3));"
                       " INSERT INTO public.p VALUES (2, NULL), (1, '[1,-0,3.5]')")
        assert "vector_send" in checksums.form_query(app, "letta", "p").as_string(app)
        assert digest(app, "p", "letta") == digest(target, "p")
        app.execute("CREATE FUNCTION letta.vector_send(letta.vector, int DEFAULT 0) RETURNS bytea"
                    " LANGUAGE sql AS 'SELECT NULL::bytea'")
        query = checksums.form_query(app, "letta", "p").as_string(app)
        assert "vector_send" not in query and "record_out" in query
        assert digest(app, "p", "letta") == digest(app, "p", "letta")   # still readable


def test_a_manifest_names_its_checksum_form():
    assert appdump.checksum_form({}) == checksums.LEGACY_FORM          # written before the form existed
    assert appdump.checksum_form({"checksum_form": checksums.FORM}) == checksums.FORM
    with pytest.raises(ConfigError, match="unknown"):
        appdump.checksum_form({"checksum_form": "columns-99"})
