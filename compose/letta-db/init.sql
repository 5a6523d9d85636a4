-- Letta's own database layout (as its compose init script makes it): a schema
-- named after the database, owned by the app user, pgvector installed INTO that
-- schema, and the database's search_path pointing at it. The migration has to
-- undo exactly this (vector -> extensions, letta -> letta_agents/embeddings).
\set db_user `echo "$POSTGRES_USER"`
\set db_name `echo "$POSTGRES_DB"`
CREATE SCHEMA IF NOT EXISTS :"db_name" AUTHORIZATION :"db_user";
ALTER DATABASE :"db_name" SET search_path TO :"db_name";
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA :"db_name";
