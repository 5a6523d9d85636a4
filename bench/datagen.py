"""The benchmark's legacy databases: an n8n-like PostgreSQL 15 source (schema
public) and a Letta-like PostgreSQL 17 + pgvector source (schema letta, vector
installed in it, as compose/letta-db/init.sql does).

All rows are generated server-side with generate_series, so generation runs at
the server's insert speed. Each sized table is filled in batches until its
pg_table_size (heap + TOAST, no indexes) reaches its share of SIZE; the share
of every table is in PLAN below. Tables are created bare, loaded, then get
their keys, indexes and foreign keys, then VACUUM (FREEZE, ANALYZE) and a
CHECKPOINT, so no method later pays for hint bits on the sources.

Shapes (modelled on n8n 1.x / Letta 0.x, simplified):
- n8n: workflow_entity (nodes json), workflow_history, execution_entity (many
  narrow rows, skewed onto few workflows), execution_data (large JSON payloads
  in a text column, TOASTed), execution_metadata, and ~25 small tables.
- Letta: messages (jsonb content, inline rows; the one table much larger than
  the rest, so range splitting is exercised), archival_passages and
  source_passages with vector(4096) embeddings (TOASTed, incompressible),
  agents / steps / block / tools (wide), provider_traces (big JSON), files and
  file_contents, and ~14 small tables.

Profiles: "apps" (the default, the shapes above) and "vector" (--profile vector:
nine tenths of SIZE in the two vector(4096) tables, every other table scaled
down to share the last tenth), for the cost of embeddings alone.

Generated data lives in docker volumes (one per database, labelled
consolidation.bench=data) keyed by size, profile, image and this file's content,
so `make bench` reuses it; `make bench-clean` removes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from bench import dockerkit
from bench.dockerkit import Server

SQL_DIR = Path(__file__).with_name("sql")
# The data volumes are keyed by what generates them: this file and its SQL.
RECIPE = hashlib.sha256(Path(__file__).read_bytes() + b"".join(
    f.read_bytes() for f in sorted(SQL_DIR.glob("*.sql")))).hexdigest()[:10]
N8N = "n8n"
LETTA = "letta"
MARK = "consolidation-bench"

# --- helpers for the generator SQL -----------------------------------------

T0 = "timestamptz '2025-01-01 00:00:00+00'"


def ts(expr: str, step: str = "37 seconds") -> str:
    return f"({T0} + ({expr}) * interval '{step}')"


def uid(prefix: str, expr: str) -> str:
    """Letta-style ids: '<prefix>-<uuid>' derived from a number."""
    return f"('{prefix}-' || md5('{prefix}' || ({expr}))::uuid)"


def wf(expr: str) -> str:
    """n8n workflow ids: 16 characters."""
    return f"substr(md5('wf' || ({expr})), 1, 16)"


def words(seed: str, count: str) -> str:
    """A correlated string of md5 'words' (about 33 bytes each), half compressible."""
    return f"(SELECT string_agg(md5(({seed})::text || '/' || k), ' ') FROM generate_series(1, {count}) k)"


NODE_TYPES = ("ARRAY['n8n-nodes-base.httpRequest','n8n-nodes-base.set','n8n-nodes-base.code',"
              "'n8n-nodes-base.if','@n8n/n8n-nodes-langchain.agent','n8n-nodes-base.postgres']")


def nodes(seed: str, count: str) -> str:
    return (f"(SELECT json_agg(json_build_object('id', md5(({seed})::text || '-' || k)::uuid, 'name', 'Node ' || k,"
            f" 'type', ({NODE_TYPES})[1 + (({seed}) + k) % 6], 'typeVersion', 1 + k % 3,"
            f" 'position', json_build_array(k * 220, (({seed}) % 7) * 120),"
            f" 'parameters', json_build_object('url', 'https://api.example.com/v1/' || md5(({seed})::text || k),"
            f" 'jsCode', repeat('// transform item ' || k || E'\\n', 3 + ({seed}) % 12), 'options', '{{}}'::json)))"
            f" FROM generate_series(1, {count}) k)")


def connections(seed: str, count: str) -> str:
    return (f"(SELECT json_object_agg('Node ' || k, json_build_object('main', json_build_array(json_build_array("
            f"json_build_object('node', 'Node ' || (k + 1), 'type', 'main', 'index', 0)))))"
            f" FROM generate_series(1, {count}) k)")


# --- n8n -----------------------------------------------------------------------


N8N_TABLES = (SQL_DIR / "n8n_tables.sql").read_text()

N8N_CONSTRAINTS = (SQL_DIR / "n8n_constraints.sql").read_text()

USERS = 5
PROJECTS = USERS + 1


def user_id(expr: str) -> str:
    return f"md5('user' || ({expr}))::uuid"


def project_id(expr: str) -> str:
    return f"substr(md5('project' || ({expr})), 1, 16)"


# Each step: (table, share of SIZE or None for a fixed row count, generator SQL over {lo}..{hi}, fixed rows).
# Context names in braces: W workflows, E executions, D execution_data rows, C credentials.
N8N_PLAN = [
    ("user", None, f"""INSERT INTO "user" (id, email, "firstName", "lastName", password, "personalizationAnswers",
        settings, "roleSlug", "lastActiveAt")
      SELECT {user_id('i')}, 'user' || i || '@example.com', 'First' || i, 'Last' || i,
        '$2a$10$' || md5('pw' || i) || md5('salt' || i), json_build_object('companySize', '20-99', 'role', 'eng'),
        json_build_object('userActivated', true), CASE WHEN i = 1 THEN 'global:owner' ELSE 'global:member' END,
        date '2025-06-01' + i
      FROM generate_series({{lo}}, {{hi}}) i""", USERS),
    ("project", None, f"""INSERT INTO project (id, name, type, "creatorId")
      SELECT {project_id('i')}, CASE WHEN i <= {USERS} THEN 'First' || i || ' Last' || i || ' <user' || i || '@example.com>'
        ELSE 'Team ' || i END, CASE WHEN i <= {USERS} THEN 'personal' ELSE 'team' END, {user_id('1 + i % ' + str(USERS))}
      FROM generate_series({{lo}}, {{hi}}) i""", PROJECTS),
    ("project_relation", None, f"""INSERT INTO project_relation ("projectId", "userId", role)
      SELECT {project_id('i')}, {user_id('1 + (i - 1) % ' + str(USERS))}, 'project:personalOwner'
      FROM generate_series({{lo}}, {{hi}}) i""", USERS),
    ("workflow_entity", 0.02, f"""INSERT INTO workflow_entity (id, name, active, nodes, connections, settings,
        "staticData", "versionId", "triggerCount", meta, "isArchived", "createdAt", "updatedAt")
      SELECT {wf('i')}, 'Workflow ' || i || ' ' || left(md5('name' || i), 8), i % 3 = 0,
        {nodes('i', '4 + i % 21')}, {connections('i', '3 + i % 20')},
        json_build_object('executionOrder', 'v1', 'saveManualExecutions', true, 'callerPolicy', 'workflowsFromSameOwner'),
        CASE WHEN i % 4 = 0 THEN json_build_object('node:Schedule', json_build_object('recurrenceRules', '[]'::json)) END,
        md5('version' || i)::uuid, i % 3, json_build_object('templateCredsSetupCompleted', true),
        i % 50 = 0, {ts('i', '13 minutes')}, {ts('i', '13 minutes')} + ((i * 7919) % 100000) * interval '1 minute'
      FROM generate_series({{lo}}, {{hi}}) i""", None, 20),
    ("shared_workflow", None, f"""INSERT INTO shared_workflow ("workflowId", "projectId", role)
      SELECT {wf('i')}, {project_id('1 + i % ' + str(PROJECTS))}, 'workflow:owner'
      FROM generate_series({{lo}}, {{hi}}) i""", "W"),
    ("workflow_history", 0.04, f"""INSERT INTO workflow_history ("versionId", "workflowId", authors, "createdAt",
        "updatedAt", nodes, connections, name)
      SELECT md5('history' || i)::uuid, {wf('1 + i % {W}')}, 'First1 Last1', {ts('i', '2 minutes')},
        {ts('i', '2 minutes')}, {nodes('i', '4 + i % 21')}, {connections('i', '3 + i % 20')}, 'Version ' || i
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    # Skewed: 4 in 5 executions belong to the busiest tenth of the workflows.
    ("execution_entity", 0.045, f"""INSERT INTO execution_entity (id, finished, mode, "retryOf", "startedAt",
        "stoppedAt", "waitTill", status, "workflowId", "deletedAt", "createdAt")
      SELECT i, i % 17 <> 0, (ARRAY['trigger','webhook','manual','retry','integrated'])[1 + i % 5],
        CASE WHEN i % 97 = 0 THEN (i - 1)::text END, {ts('i')}, {ts('i')} + (i % 9000) * interval '1 millisecond',
        CASE WHEN i % 501 = 0 THEN {ts('i')} + interval '1 day' END,
        (ARRAY['success','success','success','error','canceled','waiting'])[1 + i % 6],
        {wf("CASE WHEN i % 5 <> 0 THEN 1 + i % greatest({W} / 10, 1) ELSE 1 + i % {W} END")},
        CASE WHEN i % 211 = 0 THEN {ts('i')} + interval '30 days' END, {ts('i')}
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    # The newest executions keep their data (n8n prunes old execution data).
    ("execution_data", 0.16, f"""INSERT INTO execution_data ("executionId", "workflowData", data, "workflowVersionId")
      SELECT {{E}} - i + 1,
        json_build_object('id', {wf('1 + ({E} - i) % {W}')}, 'name', 'Workflow ' || i, 'active', true,
          'nodes', {nodes('i', '3 + i % 8')}, 'connections', '{{}}'::json,
          'settings', json_build_object('executionOrder', 'v1')),
        '[{{"startData":"1","resultData":"2","executionData":"3"}},{{"runData":"4"}},' ||
        (SELECT string_agg(json_build_object('json', json_build_object('id', i * 1000 + k,
           'email', 'customer' || k || '@example.com', 'name', md5(i::text || 'n' || k),
           'payload', md5(i::text || 'p' || k) || md5(k::text || 'q' || i) || repeat(' lorem ipsum', k % 9),
           'status', (ARRAY['ok','retry','failed'])[1 + k % 3], 'amount', (i * k) % 10000 / 100.0,
           'tags', json_build_array('a' || k % 7, 'b' || k % 11)))::text, ',')
         FROM generate_series(1, 10 + (i * 7) % 150) k) || ']',
        md5('version' || i)::uuid
      FROM generate_series({{lo}}, least({{hi}}, {{E}})) i""", None),
    ("execution_metadata", 0.01, f"""INSERT INTO execution_metadata (id, "executionId", key, value)
      SELECT i, 1 + (i * 13) % {{E}}, (ARRAY['customerId','orderId','source','traceId'])[1 + i % 4],
        md5('meta' || i) FROM generate_series({{lo}}, {{hi}}) i""", None),
    ("credentials_entity", None, f"""INSERT INTO credentials_entity (id, name, data, type)
      SELECT substr(md5('cred' || i), 1, 16), 'Credential ' || i,
        encode(sha256(('secret' || i)::bytea), 'base64') || encode(sha256(('more' || i)::bytea), 'base64'),
        (ARRAY['httpBasicAuth','postgres','openAiApi','slackApi','googleSheetsOAuth2Api'])[1 + i % 5]
      FROM generate_series({{lo}}, {{hi}}) i""", "C"),
    ("shared_credentials", None, f"""INSERT INTO shared_credentials ("credentialsId", "projectId", role)
      SELECT substr(md5('cred' || i), 1, 16), {project_id('1 + i % ' + str(PROJECTS))}, 'credential:owner'
      FROM generate_series({{lo}}, {{hi}}) i""", "C"),
    ("tag_entity", None, """INSERT INTO tag_entity (id, name)
      SELECT substr(md5('tag' || i), 1, 16), 'tag-' || i FROM generate_series({lo}, {hi}) i""", 30),
    ("workflows_tags", None, f"""INSERT INTO workflows_tags ("workflowId", "tagId")
      SELECT {wf('i')}, substr(md5('tag' || (1 + i % 30)), 1, 16) FROM generate_series({{lo}}, {{hi}}) i""", "W"),
    ("webhook_entity", None, f"""INSERT INTO webhook_entity ("workflowId", "webhookPath", method, node, "webhookId",
        "pathLength")
      SELECT {wf('i * 3')}, md5('hook' || i)::uuid || '/webhook', 'POST', 'Webhook', md5('hook' || i)::uuid, 2
      FROM generate_series({{lo}}, {{hi}}) i""", "W3"),
    ("settings", None, """INSERT INTO settings (key, value, "loadOnStartup")
      SELECT 'setting.' || i, json_build_object('value', md5('s' || i))::text, i % 2 = 0
      FROM generate_series({lo}, {hi}) i""", 25),
    ("variables", None, """INSERT INTO variables (id, key, value)
      SELECT substr(md5('var' || i), 1, 16), 'VAR_' || i, md5('v' || i) FROM generate_series({lo}, {hi}) i""", 20),
    ("installed_packages", None, """INSERT INTO installed_packages ("packageName", "installedVersion", "authorName")
      SELECT 'n8n-nodes-community-' || i, '1.' || i || '.0', 'Author ' || i FROM generate_series({lo}, {hi}) i""", 5),
    ("installed_nodes", None, """INSERT INTO installed_nodes (name, type, package)
      SELECT 'Community Node ' || i, 'n8n-nodes-community-' || (1 + i % 5) || '.node' || i,
        'n8n-nodes-community-' || (1 + i % 5) FROM generate_series({lo}, {hi}) i""", 15),
    ("event_destinations", None, """INSERT INTO event_destinations (id, destination)
      SELECT md5('dest' || i)::uuid, jsonb_build_object('__type', '$$MessageEventBusDestinationWebhook',
        'url', 'https://logs.example.com/' || i, 'enabled', true) FROM generate_series({lo}, {hi}) i""", 3),
    ("auth_identity", None, f"""INSERT INTO auth_identity ("userId", "providerId", "providerType")
      SELECT {user_id('i')}, 'ldap-' || i, 'ldap' FROM generate_series({{lo}}, {{hi}}) i""", 2),
    ("migrations", None, """INSERT INTO migrations (id, "timestamp", name)
      SELECT i, 1587669153312 + i::bigint * 86400000, 'Migration' || i || 'Name' || (1587669153312 + i::bigint * 86400000)
      FROM generate_series({lo}, {hi}) i""", 150),
    ("annotation_tag_entity", None, """INSERT INTO annotation_tag_entity (id, name)
      SELECT substr(md5('atag' || i), 1, 16), 'label-' || i FROM generate_series({lo}, {hi}) i""", 10),
    ("execution_annotations", None, """INSERT INTO execution_annotations (id, "executionId", vote, note)
      SELECT i, 1 + (i * 101) % {E}, (ARRAY['up','down'])[1 + i % 2], 'note ' || md5('note' || i)
      FROM generate_series({lo}, {hi}) i""", 50),
    ("execution_annotation_tags", None, """INSERT INTO execution_annotation_tags ("annotationId", "tagId")
      SELECT i, substr(md5('atag' || (1 + i % 10)), 1, 16) FROM generate_series({lo}, {hi}) i""", 50),
    ("folder", None, f"""INSERT INTO folder (id, name, "projectId")
      SELECT substr(md5('folder' || i), 1, 16), 'Folder ' || i, {project_id('1 + i % ' + str(PROJECTS))}
      FROM generate_series({{lo}}, {{hi}}) i""", 20),
    ("processed_data", None, f"""INSERT INTO processed_data ("workflowId", context, value)
      SELECT {wf('i')}, 'node:Trigger', json_build_object('processed', json_build_array(md5('p' || i)))::text
      FROM generate_series({{lo}}, {{hi}}) i""", "W10"),
    ("insights_metadata", None, f"""INSERT INTO insights_metadata ("metaId", "workflowId", "projectId", "workflowName",
        "projectName")
      SELECT i, {wf('i')}, {project_id('1 + i % ' + str(PROJECTS))}, 'Workflow ' || i, 'Project'
      FROM generate_series({{lo}}, {{hi}}) i""", "W"),
    ("insights_raw", None, """INSERT INTO insights_raw (id, "metaId", type, value, "timestamp")
      SELECT i, 1 + i % {W}, i % 4, (i * 37) % 5000, timestamptz '2025-01-01' + i * interval '1 minute'
      FROM generate_series({lo}, {hi}) i""", 2000),
    ("insights_by_period", None, """INSERT INTO insights_by_period (id, "metaId", type, value, "periodUnit", "periodStart")
      SELECT i, 1 + i % {W}, i % 4, (i * 37) % 5000, 0, timestamptz '2025-01-01' + (i / 4) * interval '1 hour'
      FROM generate_series({lo}, {hi}) i""", 1000),
    ("workflow_statistics", None, f"""INSERT INTO workflow_statistics (count, "latestEvent", name, "workflowId")
      SELECT i % 1000, {ts('i')}, (ARRAY['production_success','production_error','manual_success'])[1 + i % 3],
        {wf('1 + (i - 1) / 3')} FROM generate_series({{lo}}, {{hi}}) i""", "W3x"),
    ("user_api_keys", None, f"""INSERT INTO user_api_keys (id, "userId", label, "apiKey", scopes)
      SELECT substr(md5('key' || i), 1, 16), {user_id('i')}, 'key ' || i, 'n8n_api_' || md5('apikey' || i),
        json_build_array('workflow:read', 'workflow:list') FROM generate_series({{lo}}, {{hi}}) i""", 3),
    ("invalid_auth_token", None, """INSERT INTO invalid_auth_token (token, "expiresAt")
      SELECT md5('tok' || i) || md5('en' || i), timestamptz '2026-01-01' + i * interval '1 hour'
      FROM generate_series({lo}, {hi}) i""", 10),
    ("test_run", None, f"""INSERT INTO test_run (id, "workflowId", status, metrics, "runAt", "completedAt")
      SELECT substr(md5('run' || i), 1, 16), {wf('i')}, 'completed', json_build_object('accuracy', 0.9),
        {ts('i')}, {ts('i')} + interval '1 minute' FROM generate_series({{lo}}, {{hi}}) i""", 10),
]

# --- Letta ---------------------------------------------------------------------


LETTA_TABLES = (SQL_DIR / "letta_tables.sql").read_text()

LETTA_CONSTRAINTS = (SQL_DIR / "letta_constraints.sql").read_text()

ORG = "'org-00000000-0000-4000-8000-000000000000'"
EMBED_CONFIG = ("json_build_object('embedding_endpoint_type', 'openai', 'embedding_model', 'text-embedding-3-large',"
                " 'embedding_dim', 4096, 'embedding_chunk_size', 300, 'batch_size', 32)")
LLM_CONFIG = ("json_build_object('model', 'gpt-4o-mini', 'model_endpoint_type', 'openai', 'model_endpoint',"
              " 'https://api.openai.com/v1', 'context_window', 128000, 'put_inner_thoughts_in_kwargs', true,"
              " 'temperature', 0.7, 'max_tokens', 4096)")
SOURCES = 20
PASSAGE_AGENTS = 40   # agents that own archival passages (KNN and passage queries use them)


def agent(expr: str) -> str:
    return uid("agent", expr)


LETTA_PLAN = [
    ("organizations", None, f"""INSERT INTO organizations (id, name) SELECT {ORG}, 'default_org'
      FROM generate_series({{lo}}, {{hi}}) i""", 1),
    ("users", None, f"""INSERT INTO users (id, name, organization_id)
      SELECT {uid('user', 'i')}, 'user ' || i, {ORG} FROM generate_series({{lo}}, {{hi}}) i""", 3),
    # Wide: 32 columns, a system prompt of ~2-4 kB, several json configs.
    ("agents", 0.01, f"""INSERT INTO agents (id, name, description, message_ids, system, agent_type, llm_config,
        embedding_config, metadata_, tool_rules, organization_id, project_id, message_buffer_autoclear, enable_sleeptime,
        last_run_completion, last_run_duration_ms, timezone, max_files_open, per_file_view_window_char_limit, hidden,
        last_stop_reason, created_at, updated_at, _created_by_id)
      SELECT {agent('i')}, 'agent-' || i, 'Support agent number ' || i,
        (SELECT json_agg({uid('message', 'i * 100 + k')}) FROM generate_series(1, 3 + i % 5) k),
        'You are Letta, the latest version of Limnal Corporation''s digital companion. ' ||
          {words('i', '40 + i % 60')}, 'memgpt_v2_agent', {LLM_CONFIG}, {EMBED_CONFIG},
        json_build_object('tier', i % 3, 'owner', 'user ' || (1 + i % 3)),
        json_build_array(json_build_object('tool_name', 'send_message', 'type', 'exit_loop')),
        {ORG}, 'project-' || (i % 4), false, i % 2 = 0, {ts('i', '1 hour')}, 1000 + i % 5000, 'UTC', 5, 15000,
        false, 'end_turn', {ts('i', '1 hour')}, {ts('i', '1 hour')}, {uid('user', '1 + i % 3')}
      FROM generate_series({{lo}}, {{hi}}) i""", None, PASSAGE_AGENTS),
    ("block", 0.01, f"""INSERT INTO block (id, value, "limit", label, description, metadata_, organization_id,
        created_at, version)
      SELECT {uid('block', 'i')}, {words('i', '10 + i % 50')}, 5000,
        (ARRAY['human','persona','scratchpad'])[1 + i % 3], 'Memory block ' || i, '{{}}'::json, {ORG},
        {ts('i', '1 hour')}, 1 + i % 4
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    ("blocks_agents", None, f"""INSERT INTO blocks_agents (agent_id, block_id, block_label)
      SELECT {agent('1 + i % {A}')}, {uid('block', 'i')}, (ARRAY['human','persona','scratchpad'])[1 + i % 3]
      FROM generate_series({{lo}}, {{hi}}) i""", "B"),
    ("tools", 0.005, f"""INSERT INTO tools (id, name, description, source_type, source_code, json_schema, tags,
        return_char_limit, organization_id, tool_type, metadata_)
      SELECT {uid('tool', 'i')}, 'tool_' || i, 'Does thing ' || i, 'python',
        'def tool_' || i || E'(query: str) -> str:\\n    # ' || {words('i', '5 + i % 20')} || E'\\n    return query\\n',
        json_build_object('name', 'tool_' || i, 'parameters', json_build_object('type', 'object',
          'properties', json_build_object('query', json_build_object('type', 'string')))),
        json_build_array('custom'), 6000, {ORG}, 'custom', '{{}}'::json
      FROM generate_series({{lo}}, {{hi}}) i""", None, 8),
    ("tools_agents", None, f"""INSERT INTO tools_agents (agent_id, tool_id)
      SELECT {agent('1 + (i - 1) / 5')}, {uid('tool', '1 + ((i - 1) / 5 * 3 + (i - 1) % 5) % {T}')}
      FROM generate_series({{lo}}, {{hi}}) i""", "A5"),
    ("sources", None, f"""INSERT INTO sources (id, name, description, embedding_config, organization_id)
      SELECT {uid('source', 'i')}, 'source_' || i, 'Documents ' || i, {EMBED_CONFIG}, {ORG}
      FROM generate_series({{lo}}, {{hi}}) i""", SOURCES),
    ("sources_agents", None, f"""INSERT INTO sources_agents (agent_id, source_id)
      SELECT {agent('i')}, {uid('source', '1 + i % ' + str(SOURCES))} FROM generate_series({{lo}}, {{hi}}) i""", "A"),
    ("files", 0.004, f"""INSERT INTO files (id, source_id, file_name, original_file_name, file_path, file_type,
        file_size, processing_status, total_chunks, chunks_embedded, organization_id, created_at)
      SELECT {uid('file', 'i')}, {uid('source', '1 + i % ' + str(SOURCES))}, 'doc_' || i || '.pdf', 'doc_' || i || '.pdf',
        '/data/files/' || md5('f' || i) || '.pdf', 'application/pdf', 10000 + i * 7 % 900000, 'completed', 40, 40,
        {ORG}, {ts('i', '1 hour')}
      FROM generate_series({{lo}}, {{hi}}) i""", None, 5),
    ("file_contents", 0.02, f"""INSERT INTO file_contents (id, file_id, text, created_at)
      SELECT {uid('file_content', 'i')}, {uid('file', 'i')}, {words('i', '100 + i % 400')}, {ts('i', '1 hour')}
      FROM generate_series({{lo}}, least({{hi}}, {{F}})) i""", None),
    # The big one: ~45% of SIZE, rows inline (no TOAST), so a ctid range split cuts it evenly.
    ("messages", 0.45, f"""INSERT INTO messages (id, agent_id, organization_id, role, content, model, tool_calls,
        tool_call_id, step_id, otid, created_at, updated_at, sequence_id, _created_by_id)
      SELECT {uid('message', 'i')}, {agent('1 + i % {A}')}, {ORG},
        (ARRAY['user','assistant','tool','assistant'])[1 + i % 4],
        jsonb_build_array(jsonb_build_object('type', 'text', 'text', {words('i', '4 + i % 16')})),
        'gpt-4o-mini',
        CASE WHEN i % 4 = 1 THEN jsonb_build_array(jsonb_build_object('id', 'call_' || left(md5('c' || i), 24),
          'type', 'function', 'function', jsonb_build_object('name', 'send_message',
          'arguments', jsonb_build_object('message', left(md5('a' || i), 20))::text))) END,
        CASE WHEN i % 4 = 2 THEN 'call_' || left(md5('c' || (i - 1)), 24) END,
        {uid('step', '1 + i / 4')}, {uid('otid', 'i')}, {ts('i', '3 seconds')}, {ts('i', '3 seconds')}, i,
        {uid('user', '1 + i % 3')}
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    ("archives", None, f"""INSERT INTO archives (id, name, organization_id)
      SELECT {uid('archive', 'i')}, 'archive of agent ' || i, {ORG} FROM generate_series({{lo}}, {{hi}}) i""", "AP"),
    ("archives_agents", None, f"""INSERT INTO archives_agents (agent_id, archive_id)
      SELECT {agent('i')}, {uid('archive', 'i')} FROM generate_series({{lo}}, {{hi}}) i""", "AP"),
    # 4096-dimensional embeddings (16 kB, incompressible: TOASTed out of line), from a pool of random
    # vectors plus a per-row offset so that no two rows are equal.
    ("archival_passages", 0.10, f"""INSERT INTO archival_passages (id, text, embedding_config, metadata_, embedding,
        tags, agent_id, archive_id, organization_id, created_at, updated_at)
      SELECT {uid('passage', 'i')}, {words('i', '15 + i % 30')}, {EMBED_CONFIG}, json_build_object('source', 'chat'),
        p.v + array_fill(((i % 1000) / 100000.0)::real, ARRAY[4096])::vector,
        json_build_array('memory', 'tag' || i % 9), {agent('1 + i % {AP}')}, {uid('archive', '1 + i % {AP}')},
        {ORG}, {ts('i', '5 minutes')}, {ts('i', '5 minutes')}
      FROM generate_series({{lo}}, {{hi}}) i JOIN pg_temp._pool p ON p.k = i % 64""", None),
    ("source_passages", 0.04, f"""INSERT INTO source_passages (id, text, embedding_config, metadata_, embedding,
        file_name, file_id, source_id, organization_id, created_at)
      SELECT {uid('source_passage', 'i')}, {words('i', '15 + i % 30')}, {EMBED_CONFIG},
        json_build_object('page', i % 40), p.v + array_fill(((i % 777) / 100000.0)::real, ARRAY[4096])::vector,
        'doc_' || (1 + i % {{F}}) || '.pdf', {uid('file', '1 + i % {F}')},
        {uid('source', '1 + (1 + i % {F}) % ' + str(SOURCES))}, {ORG}, {ts('i', '5 minutes')}
      FROM generate_series({{lo}}, {{hi}}) i JOIN pg_temp._pool p ON p.k = (i * 7) % 64""", None),
    ("steps", 0.035, f"""INSERT INTO steps (id, origin, organization_id, provider_id, agent_id, provider_name,
        provider_category, model, model_endpoint, context_window_limit, completion_tokens, prompt_tokens, total_tokens,
        completion_tokens_details, tags, tid, trace_id, status, stop_reason, run_id, created_at, updated_at)
      SELECT {uid('step', 'i')}, 'https://api.openai.com', {ORG}, {uid('provider', '1 + i % 4')},
        {agent('1 + i % {A}')}, 'openai', 'base', 'gpt-4o-mini', 'https://api.openai.com/v1', 128000,
        50 + i % 500, 1000 + i % 8000, 1050 + i % 8500, json_build_object('reasoning_tokens', i % 100),
        json_build_array(), left(md5('tid' || i), 24), md5('trace' || i), 'success', 'end_turn',
        {uid('run', '1 + i / 3')}, {ts('i', '12 seconds')}, {ts('i', '12 seconds')}
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    ("provider_traces", 0.035, f"""INSERT INTO provider_traces (id, request_json, response_json, step_id,
        organization_id, created_at)
      SELECT {uid('provider_trace', 'i')},
        json_build_object('model', 'gpt-4o-mini', 'messages', (SELECT json_agg(json_build_object('role',
          (ARRAY['system','user','assistant'])[1 + k % 3], 'content', md5(i::text || k) || ' ' || md5(k::text || i)))
          FROM generate_series(1, 10 + i % 40) k), 'tools', json_build_array('send_message', 'archival_memory_search')),
        json_build_object('id', 'chatcmpl-' || md5('r' || i), 'choices', json_build_array(json_build_object(
          'message', json_build_object('role', 'assistant', 'content', {words('i', '3 + i % 10')})))),
        {uid('step', '1 + i % {S}')}, {ORG}, {ts('i', '12 seconds')}
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    ("jobs", 0.005, f"""INSERT INTO jobs (id, user_id, status, completed_at, metadata_, job_type, agent_id,
        organization_id, created_at)
      SELECT {uid('job', 'i')}, {uid('user', '1 + i % 3')}, 'completed', {ts('i', '1 minute')},
        json_build_object('job_type', 'batch', 'agent_id', {agent('1 + i % {A}')}), 'run', {agent('1 + i % {A}')},
        {ORG}, {ts('i', '1 minute')}
      FROM generate_series({{lo}}, {{hi}}) i""", None),
    ("identities", None, f"""INSERT INTO identities (id, identifier_key, name, identity_type, organization_id, properties)
      SELECT {uid('identity', 'i')}, 'customer-' || i, 'Customer ' || i, 'user', {ORG}, '[]'::json
      FROM generate_series({{lo}}, {{hi}}) i""", 20),
    ("identities_agents", None, f"""INSERT INTO identities_agents (identity_id, agent_id)
      SELECT {uid('identity', '1 + i % 20')}, {agent('i')} FROM generate_series({{lo}}, {{hi}}) i""", "A"),
    ("sandbox_configs", None, f"""INSERT INTO sandbox_configs (id, type, config, organization_id)
      SELECT {uid('sandbox', 'i')}, (ARRAY['local','e2b'])[i], json_build_object('timeout', 180), {ORG}
      FROM generate_series({{lo}}, {{hi}}) i""", 2),
    ("sandbox_environment_variables", None, f"""INSERT INTO sandbox_environment_variables (id, key, value,
        sandbox_config_id, organization_id)
      SELECT {uid('sandbox-env', 'i')}, 'KEY_' || i, md5('v' || i), {uid('sandbox', '1 + i % 2')}, {ORG}
      FROM generate_series({{lo}}, {{hi}}) i""", 5),
    ("providers", None, f"""INSERT INTO providers (id, name, provider_type, api_key, base_url, organization_id)
      SELECT {uid('provider', 'i')}, 'provider ' || i, (ARRAY['openai','anthropic','ollama','groq'])[i],
        'sk-' || md5('k' || i), 'https://llm' || i || '.example.com', {ORG} FROM generate_series({{lo}}, {{hi}}) i""", 4),
    ("groups", None, f"""INSERT INTO groups (id, description, manager_type, manager_agent_id, agent_ids, organization_id)
      SELECT {uid('group', 'i')}, 'group ' || i, 'round_robin', {agent('i')},
        json_build_array({agent('i')}, {agent('i + 1')}), {ORG} FROM generate_series({{lo}}, {{hi}}) i""", 5),
    ("groups_agents", None, f"""INSERT INTO groups_agents (group_id, agent_id)
      SELECT {uid('group', '1 + (i - 1) / 2')}, {agent('1 + (i - 1) / 2 + (i - 1) % 2')}
      FROM generate_series({{lo}}, {{hi}}) i""", 10),
    ("agent_environment_variables", None, f"""INSERT INTO agent_environment_variables (id, key, value, agent_id,
        organization_id)
      SELECT {uid('agent-env', 'i')}, 'KEY_' || i, md5('v' || i), {agent('i')}, {ORG}
      FROM generate_series({{lo}}, {{hi}}) i""", 10),
]

LETTA_POOL = """CREATE TEMP TABLE _pool AS
  SELECT k, (SELECT array_agg(random()::real) FROM generate_series(1, 4096) g WHERE k >= 0)::vector(4096) AS v
  FROM generate_series(0, 63) k"""


# --- filling -------------------------------------------------------------------

def render(template: str, **values: int) -> str:
    """Fill {lo}, {hi} and the context counts ({W}, {E}, ...); other braces are SQL/JSON text."""
    return re.sub(r"\{(lo|hi|[A-Z]+)\}", lambda m: str(values[m.group(1)]), template)


def _table_bytes(conn: psycopg.Connection, table: str) -> int:
    return conn.execute("SELECT pg_table_size(%s::regclass)", (f'"{table}"',)).fetchone()[0]


def fill(conn: psycopg.Connection, table: str, template: str, ctx: dict, target_bytes: int,
         min_rows: int = 1, max_batch_bytes: int = 48_000_000) -> int:
    """Insert rows in batches until the table's size reaches target_bytes; returns the row count."""
    rows, size = 0, 0
    batch = max(min_rows, 20)
    while True:
        lo, hi = rows + 1, rows + batch
        conn.execute(render(template, lo=lo, hi=hi, **ctx))
        inserted = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] if "least(" in template else hi
        if inserted == rows:            # the generator hit its own upper bound (e.g. execution_data <= E)
            return rows
        rows = inserted
        size = _table_bytes(conn, table)
        if size >= target_bytes * 0.98 and rows >= min_rows:
            return rows
        per_row = max(size / rows, 1.0)
        batch = max(int((target_bytes - size) / per_row) + 1, 1)
        batch = min(batch, max(int(max_batch_bytes / per_row), 1), max(rows * 8, 100))


def fixed_count(spec, ctx: dict) -> int:
    if isinstance(spec, int):
        return spec
    rules = {"W3": lambda: max(ctx["W"] // 3, 1), "W10": lambda: max(ctx["W"] // 10, 1), "W3x": lambda: ctx["W"] * 3,
             "A5": lambda: ctx["A"] * 5}
    return rules[spec]() if spec in rules else ctx[spec]


def run_plan(conn: psycopg.Connection, name: str, plan: list, size: int, ctx: dict, log) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in plan:
        table, share, template, fixed = step[:4]
        min_rows = step[4] if len(step) > 4 else 1
        started = time.monotonic()
        if share is None:
            n = fixed_count(fixed, ctx)
            conn.execute(render(template, lo=1, hi=n, **ctx))
        else:
            n = fill(conn, table, template, ctx, int(size * share), min_rows=min_rows)
        counts[table] = n
        # Context for the tables that refer to this one.
        key = {"workflow_entity": "W", "execution_entity": "E", "execution_data": "D", "agents": "A",
               "block": "B", "tools": "T", "files": "F", "steps": "S"}.get(table)
        if key:
            ctx[key] = n
            if key == "W":
                ctx["C"] = max(min(n // 4, 500), 5)
            if key == "A":
                ctx["AP"] = min(n, PASSAGE_AGENTS)
        mb = _table_bytes(conn, table) / 1e6
        log(f"  {name}.{table}: {n} rows, {mb:.1f} MB ({time.monotonic() - started:.1f} s)")
    return counts


PROFILES = ("apps", "vector")
# The vector profile: these shares of SIZE, every other table scaled to share what is left.
VECTOR_SHARES = {"archival_passages": 0.70, "source_passages": 0.20}


def plan_for(db: str, profile: str) -> list:
    """The fill plan of one source under a profile (shares relative to both plans' sum)."""
    plan = N8N_PLAN if db == N8N else LETTA_PLAN
    if profile == "apps":
        return plan
    rest = sum(s[1] or 0 for p in (N8N_PLAN, LETTA_PLAN) for s in p if s[0] not in VECTOR_SHARES)
    left = 1 - sum(VECTOR_SHARES.values())
    return [(s[0], VECTOR_SHARES.get(s[0], s[1] and s[1] * left / rest), *s[2:]) for s in plan]


def generate_n8n(server: Server, size: int, log, profile: str = "apps") -> dict:
    with server.connect() as conn:
        conn.execute(N8N_TABLES)
        counts = run_plan(conn, N8N, plan_for(N8N, profile), size, {}, log)
        started = time.monotonic()
        conn.execute(N8N_CONSTRAINTS)
        log(f"  {N8N}: keys, indexes, foreign keys ({time.monotonic() - started:.1f} s)")
    return counts


def generate_letta(server: Server, size: int, log, profile: str = "apps") -> dict:
    with server.connect() as conn:
        conn.execute("SET search_path = letta")
        conn.execute(LETTA_TABLES)
        conn.execute(LETTA_POOL)
        counts = run_plan(conn, LETTA, plan_for(LETTA, profile), size, {}, log)
        conn.execute("DROP TABLE pg_temp._pool")
        started = time.monotonic()
        conn.execute(LETTA_CONSTRAINTS)
        log(f"  {LETTA}: keys, indexes, foreign keys ({time.monotonic() - started:.1f} s)")
    return counts


def finish(server: Server, log) -> None:
    """Hint bits, visibility map and statistics set once, then a checkpoint."""
    started = time.monotonic()
    with server.connect() as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE)")
        conn.execute("CHECKPOINT")
    log(f"  {server.name}: VACUUM (FREEZE, ANALYZE) + CHECKPOINT ({time.monotonic() - started:.1f} s)")


# --- the sources as containers on data volumes ------------------------------------

SOURCES_SPEC = {
    N8N: {"image_key": "N8N_DB_IMAGE", "user": "n8n", "dbname": "n8n_restore", "schema": "public"},
    LETTA: {"image_key": "LETTA_DB_IMAGE", "user": "letta", "dbname": "letta", "schema": "letta"},
}


def size_tag(size: int, profile: str = "apps") -> str:
    return f"{size // 1_000_000}mb" + ("" if profile == "apps" else f"-{profile}")


def volume_name(db: str, size: int, image: str, profile: str = "apps") -> str:
    key = hashlib.sha256(f"{RECIPE} {image}".encode()).hexdigest()[:8]
    return f"consolidation-bench-{db}-{size_tag(size, profile)}-{key}"


def _marker(server: Server) -> dict | None:
    with server.connect() as conn:
        text = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                            " WHERE datname = current_database()").fetchone()[0]
    if text and text.startswith(MARK + " "):
        return json.loads(text[len(MARK) + 1:])
    return None


def start_source(db: str, size: int, images: dict, run_id: str, profile: str = "apps") -> tuple[Server, bool]:
    """Start a source container on its data volume; returns (server, has complete data)."""
    spec = SOURCES_SPEC[db]
    image = images[spec["image_key"]]
    vname = volume_name(db, size, image, profile)
    for stale in dockerkit.bench_volumes():   # same database, size and profile from an older recipe or image
        labels = stale.attrs.get("Labels") or {}
        if labels.get("consolidation.bench.db") == db and labels.get("consolidation.bench.size") == str(size) \
                and labels.get("consolidation.bench.profile", "apps") == profile and stale.name != vname:
            stale.remove(force=True)
    volume = dockerkit.find_volume(vname)
    if volume is None:
        volume = dockerkit.create_volume(vname, {"consolidation.bench.db": db, "consolidation.bench.size": str(size),
                                                 "consolidation.bench.profile": profile,
                                                 "consolidation.bench.password": dockerkit.new_password()})
    password = volume.attrs["Labels"]["consolidation.bench.password"]
    init_sql = dockerkit.ROOT / "compose/letta-db/init.sql" if db == LETTA else None
    server = dockerkit.start_postgres(image, f"bench-{run_id}-{db}-src", user=spec["user"], dbname=spec["dbname"],
                                      password=password, data_volume=vname, init_sql=init_sql)
    marker = _marker(server)
    return server, bool(marker and marker.get("recipe") == RECIPE and marker.get("size") == size
                        and marker.get("profile", "apps") == profile)


def ensure_sources(size: int, images: dict, run_id: str, log, profile: str = "apps") -> dict[str, Server]:
    """Running source servers holding complete generated data of this size (generating what is missing)."""
    servers: dict[str, Server] = {}
    missing: list[str] = []
    try:
        for db in SOURCES_SPEC:
            server, complete = start_source(db, size, images, run_id, profile)
            if not complete:
                with server.connect() as conn:
                    schema = SOURCES_SPEC[db]["schema"]
                    n = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                     " WHERE n.nspname = %s", (schema,)).fetchone()[0]
                if n:   # a half-generated volume: start over from an empty data directory
                    vname = next(m["Name"] for m in server.container.attrs["Mounts"]
                                 if m["Destination"] == dockerkit.PGDATA)
                    labels = dockerkit.find_volume(vname).attrs["Labels"]
                    server.remove()
                    dockerkit.find_volume(vname).remove(force=True)
                    dockerkit.create_volume(vname, {k: v for k, v in labels.items() if k != dockerkit.LABEL})
                    server, complete = start_source(db, size, images, run_id, profile)
                missing.append(db)
            servers[db] = server
        if missing:
            generate(servers, missing, size, log, profile)
        return servers
    except BaseException:
        for server in servers.values():
            server.remove()
        raise


def generate(servers: dict[str, Server], dbs: list[str], size: int, log, profile: str = "apps") -> None:
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            log(line)

    shares = {db: sum(s[1] or 0 for s in plan_for(db, profile)) for db in (N8N, LETTA)}
    total_share = sum(shares.values())
    scale = 1 / total_share     # shares are relative: the plans together fill SIZE

    def one(db: str) -> dict:
        started = time.monotonic()
        say(f"bench-data: generating {db} ({size_tag(size, profile)} in total over both sources)")
        server = servers[db]
        counts = (generate_n8n if db == N8N else generate_letta)(server, int(size * scale), say, profile)
        finish(server, say)
        with server.connect() as conn:
            marker = json.dumps({"recipe": RECIPE, "size": size, "profile": profile, "rows": counts})
            conn.execute(f"COMMENT ON DATABASE {server.dbname} IS {sql.quote(MARK + ' ' + marker)}")
        say(f"bench-data: {db} done in {time.monotonic() - started:.0f} s")
        return counts

    with ThreadPoolExecutor(max_workers=len(dbs)) as pool:
        for future in [pool.submit(one, db) for db in dbs]:
            future.result()


def source_inventory(server: Server, schema: str) -> list[dict]:
    """Per table: rows (exact), table bytes (heap + TOAST), index bytes."""
    with server.connect() as conn:
        rows = conn.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid), c.relpages"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 3 DESC", (schema,)).fetchall()
    return [{"table": r[0], "rows": int(r[1]), "table_bytes": int(r[2]), "index_bytes": int(r[3]),
             "heap_pages": int(r[4])} for r in rows]
