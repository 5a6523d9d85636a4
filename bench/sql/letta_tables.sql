-- The Letta-like source's tables (schema letta, pgvector installed in it), as Letta 0.16 lays them out.
CREATE TYPE jobstatus AS ENUM ('created', 'running', 'completed', 'failed', 'pending', 'cancelled', 'expired');
CREATE SEQUENCE message_sequence_id_seq;
CREATE TABLE organizations (id varchar NOT NULL, name varchar NOT NULL, privileged_tools boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE users (id varchar NOT NULL, name varchar NOT NULL, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE agents (id varchar NOT NULL, name varchar, description varchar, message_ids json, system varchar,
  agent_type varchar, llm_config json, embedding_config json, metadata_ json, tool_rules json,
  organization_id varchar NOT NULL, project_id varchar, template_id varchar, base_template_id varchar,
  message_buffer_autoclear boolean NOT NULL DEFAULT false, enable_sleeptime boolean, response_format json,
  last_run_completion timestamptz, last_run_duration_ms integer, timezone varchar, max_files_open integer,
  per_file_view_window_char_limit integer, hidden boolean, last_stop_reason varchar, deployment_id varchar,
  entity_id varchar, multi_agent_group_id varchar, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE messages (id varchar NOT NULL, agent_id varchar NOT NULL, organization_id varchar NOT NULL,
  role varchar NOT NULL, text varchar, content jsonb, model varchar, name varchar, tool_calls jsonb,
  tool_call_id varchar, step_id varchar, otid varchar, tool_returns jsonb, group_id varchar, sender_id varchar,
  batch_item_id varchar, is_err boolean, approval_request_id varchar, approve boolean, denial_reason varchar,
  run_id varchar, sequence_id bigint NOT NULL DEFAULT nextval('message_sequence_id_seq'), created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
ALTER SEQUENCE message_sequence_id_seq OWNED BY messages.sequence_id;
CREATE TABLE archival_passages (id varchar NOT NULL, text varchar NOT NULL, embedding_config json NOT NULL,
  metadata_ json NOT NULL, embedding vector(4096), tags json, agent_id varchar, archive_id varchar,
  organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE source_passages (id varchar NOT NULL, text varchar NOT NULL, embedding_config json NOT NULL,
  metadata_ json NOT NULL, embedding vector(4096), file_name varchar, file_id varchar, source_id varchar NOT NULL,
  organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE block (id varchar NOT NULL, value varchar NOT NULL, "limit" integer NOT NULL, template_name varchar,
  label varchar NOT NULL, description varchar, metadata_ json, is_template boolean NOT NULL DEFAULT false,
  organization_id varchar NOT NULL, read_only boolean NOT NULL DEFAULT false, preserve_on_migration boolean,
  project_id varchar, template_id varchar, base_template_id varchar, deployment_id varchar, entity_id varchar,
  hidden boolean, version integer NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE blocks_agents (agent_id varchar NOT NULL, block_id varchar NOT NULL, block_label varchar NOT NULL);
CREATE TABLE tools (id varchar NOT NULL, name varchar NOT NULL, description varchar, source_type varchar NOT NULL,
  source_code varchar, json_schema json, tags json, return_char_limit integer, organization_id varchar NOT NULL,
  tool_type varchar, args_json_schema json, pip_requirements json, npm_requirements json, metadata_ json,
  default_requires_approval boolean, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE tools_agents (agent_id varchar NOT NULL, tool_id varchar NOT NULL);
CREATE TABLE sources (id varchar NOT NULL, name varchar NOT NULL, description varchar, instructions varchar,
  embedding_config json NOT NULL, metadata_ json, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE sources_agents (agent_id varchar NOT NULL, source_id varchar NOT NULL);
CREATE TABLE files (id varchar NOT NULL, source_id varchar NOT NULL, file_name varchar, original_file_name varchar,
  file_path varchar, file_type varchar, file_size integer, file_creation_date varchar, file_last_modified_date varchar,
  processing_status varchar NOT NULL, error_message text, total_chunks integer, chunks_embedded integer,
  organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE file_contents (id varchar NOT NULL, file_id varchar NOT NULL, text text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE steps (id varchar NOT NULL, origin varchar, organization_id varchar, provider_id varchar, job_id varchar,
  agent_id varchar, provider_name varchar, provider_category varchar, model varchar, model_endpoint varchar,
  context_window_limit integer, completion_tokens integer NOT NULL DEFAULT 0, prompt_tokens integer NOT NULL DEFAULT 0,
  total_tokens integer NOT NULL DEFAULT 0, completion_tokens_details json, tags json, tid varchar, trace_id varchar,
  feedback varchar, project_id varchar, status varchar, error_type varchar, error_data json, stop_reason varchar,
  run_id varchar, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE provider_traces (id varchar NOT NULL, request_json json NOT NULL, response_json json NOT NULL,
  step_id varchar, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE jobs (id varchar NOT NULL, user_id varchar NOT NULL, status jobstatus NOT NULL, completed_at timestamptz,
  metadata_ json, job_type varchar NOT NULL DEFAULT 'job', callback_url varchar, callback_sent_at timestamptz,
  callback_status_code integer, agent_id varchar, organization_id varchar, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE identities (id varchar NOT NULL, identifier_key varchar NOT NULL, name varchar NOT NULL,
  identity_type varchar NOT NULL, project_id varchar, organization_id varchar NOT NULL, properties json, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE identities_agents (identity_id varchar NOT NULL, agent_id varchar NOT NULL);
CREATE TABLE sandbox_configs (id varchar NOT NULL, type varchar NOT NULL, config json NOT NULL,
  organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE sandbox_environment_variables (id varchar NOT NULL, key varchar NOT NULL, value varchar NOT NULL,
  description varchar, sandbox_config_id varchar NOT NULL, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE providers (id varchar NOT NULL, name varchar NOT NULL, provider_type varchar, api_key varchar,
  base_url varchar, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE groups (id varchar NOT NULL, description varchar NOT NULL, manager_type varchar NOT NULL,
  manager_agent_id varchar, agent_ids json NOT NULL, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE groups_agents (group_id varchar NOT NULL, agent_id varchar NOT NULL);
CREATE TABLE archives (id varchar NOT NULL, name varchar NOT NULL, description varchar, metadata_ json,
  organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
CREATE TABLE archives_agents (agent_id varchar NOT NULL, archive_id varchar NOT NULL, is_owner boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE agent_environment_variables (id varchar NOT NULL, key varchar NOT NULL, value varchar NOT NULL,
  description varchar, agent_id varchar NOT NULL, organization_id varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz DEFAULT now(), is_deleted boolean NOT NULL DEFAULT false, _created_by_id varchar, _last_updated_by_id varchar);
