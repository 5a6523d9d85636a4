"""The RAG schemas on a real Supabase stand-in: shape, ownership, content
hashes, nearest-neighbour search through the HNSW index, cascading deletes."""

import hashlib
import json
import random

import psycopg
import pytest

from tests.support.rolestack import READONLY, allowed, fresh_stack

pytestmark = pytest.mark.integration

DIM = 1536


@pytest.fixture(scope="module")
def stack(images):
    s = fresh_stack(images)
    yield s
    s.server.container.stop()


def vec(values) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in values) + "]"


def test_shape_and_ownership(stack):
    with stack.admin() as conn:
        columns = dict(conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'rag_embeddings.chunks'::regclass AND attnum > 0 AND NOT attisdropped").fetchall())
        fk = conn.execute("SELECT confrelid::regclass::text, confdeltype FROM pg_constraint"
                          " WHERE conrelid = 'rag_embeddings.chunks'::regclass AND contype = 'f'").fetchall()
        index = conn.execute(
            "SELECT am.amname, opc.opcname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am am ON am.oid = c.relam JOIN pg_opclass opc ON opc.oid = i.indclass[0]"
            " WHERE c.oid = 'rag_embeddings.chunks_embedding_hnsw'::regclass").fetchone()
        owners = conn.execute(
            "SELECT DISTINCT relowner::regrole::text FROM pg_class WHERE relnamespace IN"
            " ('rag_documents'::regnamespace, 'rag_embeddings'::regnamespace)").fetchall()
        unique = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                              " WHERE conname = 'documents_source_content_key'").fetchone()[0]
    assert columns == {"id": "bigint", "document_id": "uuid", "chunk_index": "integer", "content": "text",
                       "embedding": f"vector({DIM})", "model": "text", "created_at": "timestamp with time zone"}
    assert fk == [("rag_documents.documents", "c")]
    assert index == ("hnsw", "vector_cosine_ops")
    assert owners == [("rag",)]
    assert unique == "UNIQUE (source_uri, content_hash)"


def test_content_hash_is_unique_per_source(stack):
    with stack.login("rag") as conn, conn.transaction(force_rollback=True):
        doc = conn.execute("INSERT INTO documents (source_uri, title, content, metadata) VALUES"
                           " ('s3://a.md', 'A', 'hello', '{\"lang\": \"en\"}') RETURNING id, content_hash, updated_at"
                           ).fetchone()
        assert doc[1] == hashlib.sha256(b"hello").hexdigest()
        conn.execute("INSERT INTO documents (source_uri, content) VALUES ('s3://b.md', 'hello')")  # other source: fine
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute("INSERT INTO documents (source_uri, content) VALUES ('s3://a.md', 'hello')")
        conn.execute("SELECT pg_sleep(0.01)")
        new_hash, updated = conn.execute("UPDATE documents SET content = 'hello again' WHERE id = %s"
                                         " RETURNING content_hash, updated_at", (doc[0],)).fetchone()
        assert new_hash == hashlib.sha256(b"hello again").hexdigest() and updated >= doc[2]


def test_nearest_neighbour_uses_hnsw_and_delete_cascades(stack):
    rng = random.Random(7)
    vectors = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(300)]
    with stack.login("rag") as conn:
        doc_ids = [conn.execute("INSERT INTO documents (source_uri, content) VALUES (%s, %s) RETURNING id",
                                (f"file:///doc{d}.md", f"document {d}")).fetchone()[0] for d in range(3)]
        with conn.cursor() as cur, cur.copy("COPY chunks (document_id, chunk_index, content, embedding, model)"
                                            " FROM STDIN") as copy:
            for i, v in enumerate(vectors):
                copy.write_row((doc_ids[i % 3], i // 3, f"chunk {i}", vec(v), "test-embedder"))
        conn.execute("ANALYZE chunks")
        target = vectors[123]
        query = vec(x + rng.uniform(-0.01, 0.01) for x in target)
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")
            plan = conn.execute("EXPLAIN (FORMAT JSON) SELECT id FROM chunks ORDER BY embedding <=> %s::vector"
                                " LIMIT 5", (query,)).fetchone()[0]
            nearest = conn.execute("SELECT content, embedding <=> %s::vector FROM chunks"
                                   " ORDER BY embedding <=> %s::vector LIMIT 1", (query, query)).fetchone()
        assert conn.execute("SELECT count(*) FROM chunks WHERE document_id = %s", (doc_ids[0],)).fetchone()[0] == 100
        conn.execute("DELETE FROM documents WHERE id = %s", (doc_ids[0],))
        remaining = conn.execute("SELECT document_id, count(*) FROM chunks GROUP BY 1 ORDER BY 2").fetchall()
    index_names = {node.get("Index Name") for node in _nodes(plan[0]["Plan"])}
    assert "chunks_embedding_hnsw" in index_names, json.dumps(plan)
    assert nearest[0] == "chunk 123" and nearest[1] < 0.001
    assert sorted(r[0] for r in remaining) == sorted(doc_ids[1:]) and [r[1] for r in remaining] == [100, 100]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_other_roles_cannot_reach_rag_data(stack):
    with stack.admin() as conn:
        for role in ("n8n", "letta", "anon", "service_role"):
            assert not allowed(conn, role, "SELECT * FROM rag_documents.documents"), role
            assert not allowed(conn, role, "SELECT * FROM rag_embeddings.chunks"), role
        assert allowed(conn, READONLY, "SELECT * FROM rag_embeddings.chunks")
        assert not allowed(conn, READONLY, "DELETE FROM rag_embeddings.chunks")
