-- The n8n-like source's keys, indexes and foreign keys, added after the data.
ALTER TABLE workflow_entity ADD CONSTRAINT pk_workflow_entity_id PRIMARY KEY (id);
ALTER TABLE workflow_history ADD CONSTRAINT "PK_b6572dd6173e4cd06fe79937b58" PRIMARY KEY ("versionId");
ALTER TABLE execution_entity ADD CONSTRAINT pk_e3e63bbf55ba1ab06d6c11e3bd4 PRIMARY KEY (id);
ALTER TABLE execution_data ADD CONSTRAINT execution_data_pkey PRIMARY KEY ("executionId");
ALTER TABLE execution_metadata ADD CONSTRAINT "PK_17a0b6284f8d626aae88e1c16e4" PRIMARY KEY (id);
ALTER TABLE "user" ADD CONSTRAINT "PK_ea8f538c94b6e352418254ed6474a81f" PRIMARY KEY (id);
ALTER TABLE "user" ADD CONSTRAINT "UQ_e12875dfb3b1d92d7d7c5377e2" UNIQUE (email);
ALTER TABLE project ADD CONSTRAINT "PK_4d68b1358bb5b766d3e78f32f57" PRIMARY KEY (id);
ALTER TABLE project_relation ADD CONSTRAINT "PK_1caaa312a5d7184a003be0f0cb6" PRIMARY KEY ("projectId", "userId");
ALTER TABLE shared_workflow ADD CONSTRAINT "PK_5ba87620386b847201c9531c58f" PRIMARY KEY ("workflowId", "projectId");
ALTER TABLE credentials_entity ADD CONSTRAINT credentials_entity_pkey PRIMARY KEY (id);
ALTER TABLE shared_credentials ADD CONSTRAINT "PK_8ef3a59796a228913f251779cff" PRIMARY KEY ("credentialsId", "projectId");
ALTER TABLE tag_entity ADD CONSTRAINT tag_entity_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX idx_812eb05f7451ca757fb98444ce ON tag_entity (name);
ALTER TABLE workflows_tags ADD CONSTRAINT pk_workflows_tags PRIMARY KEY ("workflowId", "tagId");
ALTER TABLE webhook_entity ADD CONSTRAINT "PK_b21ace2e13596ccd87dc9bf4ea6" PRIMARY KEY ("webhookPath", method);
ALTER TABLE settings ADD CONSTRAINT "PK_dc0fe14e6d9943f268e7b119f69ab8bd" PRIMARY KEY (key);
ALTER TABLE variables ADD CONSTRAINT variables_pkey PRIMARY KEY (id);
ALTER TABLE installed_packages ADD CONSTRAINT "PK_08cc9197c39b028c1e9beca225940576fd1a5804" PRIMARY KEY ("packageName");
ALTER TABLE installed_nodes ADD CONSTRAINT "PK_8ebd28194e4f792f96b5933423fc439df97d9689" PRIMARY KEY (name);
ALTER TABLE event_destinations ADD CONSTRAINT event_destinations_pkey PRIMARY KEY (id);
ALTER TABLE auth_identity ADD CONSTRAINT auth_identity_pkey PRIMARY KEY ("providerId", "providerType");
ALTER TABLE migrations ADD CONSTRAINT "PK_8c82d7f526340ab734260ea46be" PRIMARY KEY (id);
ALTER TABLE annotation_tag_entity ADD CONSTRAINT "PK_69dfa041592c30bbc0d4b84aa00" PRIMARY KEY (id);
CREATE UNIQUE INDEX "IDX_ae51b54c4bb430cf92f48b623f" ON annotation_tag_entity (name);
ALTER TABLE execution_annotations ADD CONSTRAINT "PK_7afcf93ffa20c4252869a7c6a23" PRIMARY KEY (id);
ALTER TABLE execution_annotation_tags ADD CONSTRAINT "PK_979ec03d31294cca484be65d11f" PRIMARY KEY ("annotationId", "tagId");
ALTER TABLE folder ADD CONSTRAINT "PK_6278a41a706740c94c02e288df8" PRIMARY KEY (id);
ALTER TABLE processed_data ADD CONSTRAINT "PK_ca04b9d8dc72de268fe07a65773" PRIMARY KEY ("workflowId", context);
ALTER TABLE insights_metadata ADD CONSTRAINT "PK_f448a94c35218b6208ce20cf5a1" PRIMARY KEY ("metaId");
CREATE UNIQUE INDEX "IDX_1d8ab99d5861c9388d2dc1cf73" ON insights_metadata ("workflowId");
ALTER TABLE insights_raw ADD CONSTRAINT "PK_ec15125755151e3a7e00e00014f" PRIMARY KEY (id);
ALTER TABLE insights_by_period ADD CONSTRAINT "PK_b606942249b90cc39b0265f0575" PRIMARY KEY (id);
CREATE UNIQUE INDEX "IDX_60b6a84299eeb3f671dfec7693" ON insights_by_period ("periodStart", type, "periodUnit", "metaId");
ALTER TABLE workflow_statistics ADD CONSTRAINT pk_workflow_statistics PRIMARY KEY ("workflowId", name);
ALTER TABLE user_api_keys ADD CONSTRAINT "PK_978fa5caa3468f463dac9d92e69" PRIMARY KEY (id);
CREATE UNIQUE INDEX "IDX_1ef35bac35d20bdae979d917a3" ON user_api_keys ("apiKey");
ALTER TABLE invalid_auth_token ADD CONSTRAINT "PK_5779069b7235b256d91f7af1a15" PRIMARY KEY (token);
ALTER TABLE test_run ADD CONSTRAINT "PK_011c050f566e9db509a0fadb9b9" PRIMARY KEY (id);
CREATE INDEX "IDX_execution_entity_workflowId_id" ON execution_entity ("workflowId", id);
CREATE INDEX "IDX_execution_entity_waitTill_id" ON execution_entity ("waitTill", id);
CREATE INDEX "IDX_execution_entity_stoppedAt_status_deletedAt" ON execution_entity ("stoppedAt", status, "deletedAt")
  WHERE "stoppedAt" IS NOT NULL AND "deletedAt" IS NULL;
CREATE INDEX "IDX_execution_entity_deletedAt" ON execution_entity ("deletedAt");
CREATE INDEX "IDX_cec8eea3bf49551482ccb4933e" ON execution_metadata ("executionId");
CREATE INDEX "IDX_1e31657f5fe46816c34be7c1b4" ON workflow_history ("workflowId");
CREATE INDEX "IDX_workflow_entity_name" ON workflow_entity (name);
CREATE INDEX "IDX_shared_workflow_projectId" ON shared_workflow ("projectId");
CREATE INDEX idx_16f4436789e804e3e1c9eeb240 ON webhook_entity ("webhookId", method, "pathLength");
ALTER TABLE execution_entity ADD CONSTRAINT fk_execution_entity_workflow_id FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE execution_data ADD CONSTRAINT execution_data_fk FOREIGN KEY ("executionId")
  REFERENCES execution_entity (id) ON DELETE CASCADE;
ALTER TABLE workflow_history ADD CONSTRAINT "FK_1e31657f5fe46816c34be7c1b4b" FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE execution_metadata ADD CONSTRAINT "FK_31d0b4c93fb85ced26f6005cda3" FOREIGN KEY ("executionId")
  REFERENCES execution_entity (id) ON DELETE CASCADE;
ALTER TABLE shared_workflow ADD CONSTRAINT "FK_daa206a04983d47d0a9c34649ce" FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE shared_workflow ADD CONSTRAINT "FK_a45ea5f27bcfdc21af9b4188560" FOREIGN KEY ("projectId")
  REFERENCES project (id) ON DELETE CASCADE;
ALTER TABLE shared_credentials ADD CONSTRAINT "FK_416f66fc846c7c442970c094ccf" FOREIGN KEY ("credentialsId")
  REFERENCES credentials_entity (id) ON DELETE CASCADE;
ALTER TABLE shared_credentials ADD CONSTRAINT "FK_812c2852270da1247756e77f5a4" FOREIGN KEY ("projectId")
  REFERENCES project (id) ON DELETE CASCADE;
ALTER TABLE project_relation ADD CONSTRAINT "FK_61448d56d61802b5dfde5cdb002" FOREIGN KEY ("projectId")
  REFERENCES project (id) ON DELETE CASCADE;
ALTER TABLE project_relation ADD CONSTRAINT "FK_5f0643f6717905a05164090dde7" FOREIGN KEY ("userId")
  REFERENCES "user" (id) ON DELETE CASCADE;
ALTER TABLE workflows_tags ADD CONSTRAINT fk_workflows_tags_workflow_id FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE workflows_tags ADD CONSTRAINT fk_workflows_tags_tag_id FOREIGN KEY ("tagId")
  REFERENCES tag_entity (id) ON DELETE CASCADE;
ALTER TABLE webhook_entity ADD CONSTRAINT fk_webhook_entity_workflow_id FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE execution_annotations ADD CONSTRAINT "FK_97f863fa83c4786f19565084960" FOREIGN KEY ("executionId")
  REFERENCES execution_entity (id) ON DELETE CASCADE;
ALTER TABLE execution_annotation_tags ADD CONSTRAINT "FK_a3697779b366e131b2bbdae2976" FOREIGN KEY ("annotationId")
  REFERENCES execution_annotations (id) ON DELETE CASCADE;
ALTER TABLE execution_annotation_tags ADD CONSTRAINT "FK_c1519757391996eb06064f0e7c8" FOREIGN KEY ("tagId")
  REFERENCES annotation_tag_entity (id) ON DELETE CASCADE;
ALTER TABLE folder ADD CONSTRAINT "FK_a8260b0b36939c6247f385b8221" FOREIGN KEY ("projectId")
  REFERENCES project (id) ON DELETE CASCADE;
ALTER TABLE insights_raw ADD CONSTRAINT "FK_6e2e33741adef2a7c5d66befa4e" FOREIGN KEY ("metaId")
  REFERENCES insights_metadata ("metaId") ON DELETE CASCADE;
ALTER TABLE workflow_statistics ADD CONSTRAINT fk_workflow_statistics_workflow_id FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE user_api_keys ADD CONSTRAINT "FK_e131705cbbc8fb589889b02d457" FOREIGN KEY ("userId")
  REFERENCES "user" (id) ON DELETE CASCADE;
ALTER TABLE auth_identity ADD CONSTRAINT "FK_auth_identity_user_id" FOREIGN KEY ("userId") REFERENCES "user" (id);
ALTER TABLE test_run ADD CONSTRAINT "FK_d6870d3b6e4c185d33926f423c8" FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
ALTER TABLE processed_data ADD CONSTRAINT "FK_06a69a7032c97a763c2c7599464" FOREIGN KEY ("workflowId")
  REFERENCES workflow_entity (id) ON DELETE CASCADE;
SELECT setval('execution_entity_id_seq', (SELECT max(id) FROM execution_entity));
SELECT setval('execution_metadata_id_seq', (SELECT max(id) FROM execution_metadata));
SELECT setval('migrations_id_seq', (SELECT max(id) FROM migrations));
SELECT setval('execution_annotations_id_seq', (SELECT max(id) FROM execution_annotations));
SELECT setval('"insights_metadata_metaId_seq"', (SELECT max("metaId") FROM insights_metadata));
SELECT setval('insights_raw_id_seq', (SELECT max(id) FROM insights_raw));
SELECT setval('insights_by_period_id_seq', (SELECT max(id) FROM insights_by_period));
