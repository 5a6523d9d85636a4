-- A Letta-shaped source (run inside database `letta` whose schema `letta` has
-- pgvector installed, as compose/letta-db/init.sql lays it out): enums, a
-- free-standing sequence, and vector(16) columns with NULLs.
SET search_path = letta;
CREATE TYPE sandboxtype AS ENUM ('local', 'e2b');
CREATE TYPE stepstatus AS ENUM ('pending', 'success', 'failed');
CREATE SEQUENCE message_seq_id;
CREATE TABLE agents (id text PRIMARY KEY, name text NOT NULL, sandbox sandboxtype DEFAULT 'local',
                     created_at timestamptz DEFAULT now());
CREATE TABLE messages (id text PRIMARY KEY, agent_id text REFERENCES agents(id) ON DELETE CASCADE,
                       sequence_id bigint NOT NULL DEFAULT nextval('message_seq_id'), content jsonb,
                       status stepstatus);
CREATE TABLE archival_passages (id text PRIMARY KEY, agent_id text REFERENCES agents(id), text text,
                                embedding vector(16), tags text[]);
CREATE TABLE source_passages (id text PRIMARY KEY, file_name text, text text, embedding vector(16));
CREATE INDEX messages_agent_seq ON messages (agent_id, sequence_id);
INSERT INTO agents (id, name, created_at) SELECT 'agent-' || i, 'Agent ' || i, '2025-01-01'::timestamptz + i * interval '1 day' FROM generate_series(1, 5) i;
INSERT INTO messages (id, agent_id, content, status)
  SELECT 'msg-' || i, 'agent-' || (1 + i % 5), jsonb_build_object('role', 'user', 'text', repeat('x', i % 50)), 'success'
  FROM generate_series(1, 300) i;
INSERT INTO archival_passages
  SELECT 'pass-' || i, 'agent-' || (1 + i % 5), 'memory ' || i,
         CASE WHEN i % 9 = 0 THEN NULL ELSE (SELECT array_agg(((i * 31 + g) % 97) / 97.0)::vector(16) FROM generate_series(1, 16) g) END,
         ARRAY['t' || (i % 3)]
  FROM generate_series(1, 120) i;
INSERT INTO source_passages
  SELECT 'src-' || i, 'file' || (i % 4) || '.txt', 'chunk ' || i,
         (SELECT array_agg(((i * 7 + g) % 13) / 13.0)::vector(16) FROM generate_series(1, 16) g)
  FROM generate_series(1, 40) i;
