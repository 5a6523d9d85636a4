-- 70 RAG storage: documents and their embedded chunks, owned by the rag role.
--
-- rag_documents.documents: one row per source document version; content_hash
--   (sha256 of content, filled in when not given) is unique per source_uri, so
--   re-ingesting the same content is a conflict the loader can skip
--   (INSERT ... ON CONFLICT (source_uri, content_hash) DO NOTHING).
-- rag_embeddings.chunks: the document's chunks with their embedding
--   (extensions.vector(N), N = the `vector_dimension` variable, default 1536,
--   at most 2000 for an HNSW index), deleted with their document. One HNSW
--   index for cosine distance: ORDER BY embedding <=> $1 LIMIT k.
--
-- Changing vector_dimension later: allowed while chunks is empty (the table
-- and its index are recreated); refused once it holds rows (they would need
-- re-embedding with the new model).
--
-- Created by the superuser and then given to the rag role, never through
-- `SET ROLE rag`: code the rag role wrote (a view in place of a table, a
-- CHECK calling its own function) could `RESET ROLE` back to the superuser.
-- The superuser reads only a plain table here, and changes nothing the rag
-- role defined: it drops an empty table rather than rewrite it (a rewrite
-- would evaluate the role's constraints with the superuser's rights).

-- Names resolve in pg_catalog only while these files run as a superuser: a function
-- that an app role or Supabase's `postgres` planted (in `public`, say) is never picked.
SET search_path = pg_catalog, pg_temp;

SELECT set_config('consolidation.vector_dimension', :'vector_dimension', false);

CREATE TABLE IF NOT EXISTS rag_documents.documents (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  source_uri   text NOT NULL,
  title        text,
  content      text NOT NULL,
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
  content_hash text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT documents_source_content_key UNIQUE (source_uri, content_hash)
);
COMMENT ON TABLE rag_documents.documents IS
  'RAG source documents; content_hash = sha256(content) unless given, unique per source_uri';

-- Keeps updated_at and content_hash right whoever writes the row.
CREATE OR REPLACE FUNCTION rag_documents.documents_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    NEW.updated_at := now();
    IF NEW.content IS DISTINCT FROM OLD.content AND NEW.content_hash IS NOT DISTINCT FROM OLD.content_hash THEN
      NEW.content_hash := NULL;  -- content changed, hash not: recompute below
    END IF;
  END IF;
  IF NEW.content_hash IS NULL THEN
    NEW.content_hash := encode(sha256(convert_to(NEW.content, 'UTF8')), 'hex');
  END IF;
  RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER documents_before_write
  BEFORE INSERT OR UPDATE ON rag_documents.documents
  FOR EACH ROW EXECUTE FUNCTION rag_documents.documents_before_write();

DO $$
DECLARE
  wanted int := current_setting('consolidation.vector_dimension')::int;
  current_dim int;
  kind "char";
BEGIN
  IF wanted NOT BETWEEN 1 AND 2000 THEN
    RAISE EXCEPTION 'vector_dimension must be between 1 and 2000 (the HNSW limit for vector), got %', wanted;
  END IF;
  SELECT relkind INTO kind FROM pg_class WHERE oid = to_regclass('rag_embeddings.chunks');
  IF kind IS NOT NULL AND kind <> 'r' THEN
    RAISE EXCEPTION 'rag_embeddings.chunks is not a plain table (relkind %); it was replaced outside sql/', kind;
  END IF;
  SELECT atttypmod INTO current_dim FROM pg_attribute
   WHERE attrelid = to_regclass('rag_embeddings.chunks') AND attname = 'embedding' AND NOT attisdropped;
  IF current_dim IS NOT NULL AND current_dim <> wanted THEN
    IF EXISTS (SELECT FROM rag_embeddings.chunks) THEN
      RAISE EXCEPTION 'rag_embeddings.chunks.embedding is vector(%) and holds rows; vector_dimension % would need '
                      're-embedding every chunk (empty the table first, or keep %)', current_dim, wanted, current_dim;
    END IF;
    DROP TABLE rag_embeddings.chunks;   -- empty: recreated below with the new dimension
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS rag_embeddings.chunks (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  document_id uuid NOT NULL REFERENCES rag_documents.documents (id) ON DELETE CASCADE,
  chunk_index integer NOT NULL CHECK (chunk_index >= 0),
  content     text NOT NULL,
  embedding   extensions.vector(:'vector_dimension') NOT NULL,
  model       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- also serves the foreign key (ON DELETE CASCADE looks chunks up by document_id)
  CONSTRAINT chunks_document_model_index_key UNIQUE (document_id, model, chunk_index)
);
COMMENT ON TABLE rag_embeddings.chunks IS
  'RAG chunks with embeddings; nearest neighbours: ORDER BY embedding <=> query LIMIT k (HNSW, cosine)';

CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw
  ON rag_embeddings.chunks USING hnsw (embedding extensions.vector_cosine_ops);

-- The rag role owns what it stores; its schemas' privilege policy (60) applies.
ALTER TABLE rag_documents.documents OWNER TO :"rag_role";
ALTER FUNCTION rag_documents.documents_before_write() OWNER TO :"rag_role";
ALTER TABLE rag_embeddings.chunks OWNER TO :"rag_role";
SELECT consolidation_admin.apply_privileges(schema_name)
  FROM consolidation_admin.app_schema WHERE app = 'rag' ORDER BY schema_name;
