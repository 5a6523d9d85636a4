-- The Letta-like source's keys, indexes and foreign keys, added after the data.
ALTER TABLE organizations ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);
ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE agents ADD CONSTRAINT agents_pkey PRIMARY KEY (id);
ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id);
ALTER TABLE messages ADD CONSTRAINT messages_sequence_id_key UNIQUE (sequence_id);
ALTER TABLE archival_passages ADD CONSTRAINT archival_passages_pkey PRIMARY KEY (id);
ALTER TABLE source_passages ADD CONSTRAINT source_passages_pkey PRIMARY KEY (id);
ALTER TABLE block ADD CONSTRAINT block_pkey PRIMARY KEY (id);
ALTER TABLE block ADD CONSTRAINT unique_block_id_label UNIQUE (id, label);
ALTER TABLE blocks_agents ADD CONSTRAINT blocks_agents_pkey PRIMARY KEY (agent_id, block_id);
ALTER TABLE tools ADD CONSTRAINT tools_pkey PRIMARY KEY (id);
ALTER TABLE tools ADD CONSTRAINT uix_name_organization UNIQUE (name, organization_id);
ALTER TABLE tools_agents ADD CONSTRAINT tools_agents_pkey PRIMARY KEY (agent_id, tool_id);
ALTER TABLE sources ADD CONSTRAINT sources_pkey PRIMARY KEY (id);
ALTER TABLE sources_agents ADD CONSTRAINT sources_agents_pkey PRIMARY KEY (agent_id, source_id);
ALTER TABLE files ADD CONSTRAINT files_pkey PRIMARY KEY (id);
ALTER TABLE file_contents ADD CONSTRAINT file_contents_pkey PRIMARY KEY (id);
ALTER TABLE steps ADD CONSTRAINT steps_pkey PRIMARY KEY (id);
ALTER TABLE provider_traces ADD CONSTRAINT provider_traces_pkey PRIMARY KEY (id);
ALTER TABLE jobs ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);
ALTER TABLE identities ADD CONSTRAINT identities_pkey PRIMARY KEY (id);
ALTER TABLE identities_agents ADD CONSTRAINT identities_agents_pkey PRIMARY KEY (identity_id, agent_id);
ALTER TABLE sandbox_configs ADD CONSTRAINT sandbox_configs_pkey PRIMARY KEY (id);
ALTER TABLE sandbox_environment_variables ADD CONSTRAINT sandbox_environment_variables_pkey PRIMARY KEY (id);
ALTER TABLE providers ADD CONSTRAINT providers_pkey PRIMARY KEY (id);
ALTER TABLE groups ADD CONSTRAINT groups_pkey PRIMARY KEY (id);
ALTER TABLE groups_agents ADD CONSTRAINT groups_agents_pkey PRIMARY KEY (group_id, agent_id);
ALTER TABLE archives ADD CONSTRAINT archives_pkey PRIMARY KEY (id);
ALTER TABLE archives_agents ADD CONSTRAINT archives_agents_pkey PRIMARY KEY (agent_id, archive_id);
ALTER TABLE agent_environment_variables ADD CONSTRAINT agent_environment_variables_pkey PRIMARY KEY (id);
CREATE INDEX ix_messages_agent_created_at ON messages (agent_id, created_at);
CREATE INDEX ix_messages_created_at ON messages (created_at, id);
CREATE INDEX ix_messages_agent_sequence ON messages (agent_id, sequence_id);
CREATE INDEX ix_messages_step_id ON messages (step_id);
CREATE INDEX archival_passages_created_at_id_idx ON archival_passages (created_at, id);
CREATE INDEX ix_archival_passages_agent_created ON archival_passages (agent_id, created_at);
CREATE INDEX ix_archival_passages_org_archive ON archival_passages (organization_id, archive_id);
CREATE INDEX source_passages_created_at_id_idx ON source_passages (created_at, id);
CREATE INDEX ix_source_passages_source_id ON source_passages (source_id);
CREATE INDEX ix_source_passages_file_id ON source_passages (file_id);
CREATE INDEX ix_steps_agent_id ON steps (agent_id);
CREATE INDEX ix_steps_created_at ON steps (created_at);
CREATE INDEX ix_provider_traces_step_id ON provider_traces (step_id);
CREATE INDEX ix_agents_created_at ON agents (created_at, id);
CREATE INDEX ix_agents_organization_id ON agents (organization_id);
CREATE INDEX ix_block_label ON block (label);
CREATE INDEX ix_block_organization_id ON block (organization_id);
CREATE INDEX ix_blocks_agents_block_id ON blocks_agents (block_id);
CREATE INDEX ix_files_source_id ON files (source_id);
CREATE INDEX ix_file_contents_file_id ON file_contents (file_id);
CREATE INDEX ix_jobs_created_at ON jobs (created_at, id);
ALTER TABLE users ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id);
ALTER TABLE agents ADD CONSTRAINT agents_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id);
ALTER TABLE messages ADD CONSTRAINT messages_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE messages ADD CONSTRAINT messages_organization_id_fkey FOREIGN KEY (organization_id)
  REFERENCES organizations (id);
ALTER TABLE archival_passages ADD CONSTRAINT archival_passages_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE archival_passages ADD CONSTRAINT archival_passages_archive_id_fkey FOREIGN KEY (archive_id)
  REFERENCES archives (id) ON DELETE CASCADE;
ALTER TABLE source_passages ADD CONSTRAINT source_passages_source_id_fkey FOREIGN KEY (source_id)
  REFERENCES sources (id) ON DELETE CASCADE;
ALTER TABLE source_passages ADD CONSTRAINT source_passages_file_id_fkey FOREIGN KEY (file_id)
  REFERENCES files (id) ON DELETE CASCADE;
ALTER TABLE block ADD CONSTRAINT block_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations (id);
ALTER TABLE blocks_agents ADD CONSTRAINT blocks_agents_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE blocks_agents ADD CONSTRAINT fk_block_id_label FOREIGN KEY (block_id, block_label)
  REFERENCES block (id, label) ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE tools_agents ADD CONSTRAINT tools_agents_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE tools_agents ADD CONSTRAINT tools_agents_tool_id_fkey FOREIGN KEY (tool_id)
  REFERENCES tools (id) ON DELETE CASCADE;
ALTER TABLE sources_agents ADD CONSTRAINT sources_agents_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE sources_agents ADD CONSTRAINT sources_agents_source_id_fkey FOREIGN KEY (source_id)
  REFERENCES sources (id) ON DELETE CASCADE;
ALTER TABLE files ADD CONSTRAINT files_source_id_fkey FOREIGN KEY (source_id) REFERENCES sources (id) ON DELETE CASCADE;
ALTER TABLE file_contents ADD CONSTRAINT file_contents_file_id_fkey FOREIGN KEY (file_id)
  REFERENCES files (id) ON DELETE CASCADE;
ALTER TABLE provider_traces ADD CONSTRAINT provider_traces_step_id_fkey FOREIGN KEY (step_id)
  REFERENCES steps (id) ON DELETE SET NULL;
ALTER TABLE jobs ADD CONSTRAINT jobs_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE identities_agents ADD CONSTRAINT identities_agents_identity_id_fkey FOREIGN KEY (identity_id)
  REFERENCES identities (id) ON DELETE CASCADE;
ALTER TABLE identities_agents ADD CONSTRAINT identities_agents_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE sandbox_environment_variables ADD CONSTRAINT sandbox_environment_variables_sandbox_config_id_fkey
  FOREIGN KEY (sandbox_config_id) REFERENCES sandbox_configs (id);
ALTER TABLE groups_agents ADD CONSTRAINT groups_agents_group_id_fkey FOREIGN KEY (group_id)
  REFERENCES groups (id) ON DELETE CASCADE;
ALTER TABLE groups_agents ADD CONSTRAINT groups_agents_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE archives_agents ADD CONSTRAINT archives_agents_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
ALTER TABLE archives_agents ADD CONSTRAINT archives_agents_archive_id_fkey FOREIGN KEY (archive_id)
  REFERENCES archives (id) ON DELETE CASCADE;
ALTER TABLE agent_environment_variables ADD CONSTRAINT agent_environment_variables_agent_id_fkey FOREIGN KEY (agent_id)
  REFERENCES agents (id) ON DELETE CASCADE;
SELECT setval('message_sequence_id_seq', (SELECT max(sequence_id) FROM messages));
