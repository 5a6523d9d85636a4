-- The n8n-like source's tables (schema public), as n8n 2.x lays them out.
CREATE TABLE workflow_entity (id varchar(36) NOT NULL, name varchar(128) NOT NULL, active boolean NOT NULL,
  nodes json NOT NULL, connections json NOT NULL, settings json, "staticData" json, "pinData" json,
  "versionId" char(36), "triggerCount" integer NOT NULL DEFAULT 0, meta json, "parentFolderId" varchar(36),
  "isArchived" boolean NOT NULL DEFAULT false, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE workflow_history ("versionId" varchar(36) NOT NULL, "workflowId" varchar(36) NOT NULL,
  authors varchar(255) NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), nodes json NOT NULL, connections json NOT NULL, name varchar(128),
  autosaved boolean NOT NULL DEFAULT false);
CREATE TABLE execution_entity (id serial NOT NULL, finished boolean NOT NULL, mode varchar NOT NULL,
  "retryOf" varchar, "retrySuccessId" varchar, "startedAt" timestamp(3) with time zone, "stoppedAt" timestamp(3) with time zone, "waitTill" timestamp(3) with time zone,
  status varchar NOT NULL, "workflowId" varchar(36) NOT NULL, "deletedAt" timestamp(3) with time zone,
  "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE execution_data ("executionId" integer NOT NULL, "workflowData" json NOT NULL, data text NOT NULL,
  "workflowVersionId" varchar(36));
CREATE TABLE execution_metadata (id serial NOT NULL, "executionId" integer NOT NULL, key varchar(255) NOT NULL,
  value text NOT NULL);
CREATE TABLE "user" (id uuid NOT NULL DEFAULT gen_random_uuid(), email varchar(255), "firstName" varchar(32),
  "lastName" varchar(32), password varchar(255), "personalizationAnswers" json, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), settings json,
  disabled boolean NOT NULL DEFAULT false, "mfaEnabled" boolean NOT NULL DEFAULT false, "mfaSecret" text,
  "mfaRecoveryCodes" text, "lastActiveAt" date, "roleSlug" varchar(128) NOT NULL DEFAULT 'global:member');
CREATE TABLE project (id varchar(36) NOT NULL, name varchar(255) NOT NULL, type varchar(36) NOT NULL, icon json,
  description varchar(512), "creatorId" uuid, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE project_relation ("projectId" varchar(36) NOT NULL, "userId" uuid NOT NULL, role varchar NOT NULL,
  "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE shared_workflow ("workflowId" varchar(36) NOT NULL, "projectId" varchar(36) NOT NULL,
  role text NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE credentials_entity (id varchar(36) NOT NULL, name varchar(128) NOT NULL, data text NOT NULL,
  type varchar(128) NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "isManaged" boolean NOT NULL DEFAULT false,
  "isGlobal" boolean NOT NULL DEFAULT false);
CREATE TABLE shared_credentials ("credentialsId" varchar(36) NOT NULL, "projectId" varchar(36) NOT NULL,
  role text NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE tag_entity (id varchar(36) NOT NULL, name varchar(24) NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE workflows_tags ("workflowId" varchar(36) NOT NULL, "tagId" varchar(36) NOT NULL);
CREATE TABLE webhook_entity ("workflowId" varchar(36) NOT NULL, "webhookPath" varchar NOT NULL,
  method varchar NOT NULL, node varchar NOT NULL, "webhookId" varchar, "pathLength" integer);
CREATE TABLE settings (key varchar(255) NOT NULL, value text NOT NULL, "loadOnStartup" boolean NOT NULL DEFAULT false);
CREATE TABLE variables (id varchar(36) NOT NULL, key text NOT NULL, type text NOT NULL DEFAULT 'string',
  value text, "projectId" varchar(36));
CREATE TABLE installed_packages ("packageName" varchar(214) NOT NULL, "installedVersion" varchar(50) NOT NULL,
  "authorName" varchar(70), "authorEmail" varchar(70), "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE installed_nodes (name varchar(200) NOT NULL, type varchar(200) NOT NULL,
  "latestVersion" integer NOT NULL DEFAULT 1, package varchar(241) NOT NULL);
CREATE TABLE event_destinations (id uuid NOT NULL, destination jsonb NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE auth_identity ("userId" uuid, "providerId" varchar(64) NOT NULL, "providerType" varchar(32) NOT NULL,
  "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE migrations (id serial NOT NULL, "timestamp" bigint NOT NULL, name varchar NOT NULL);
CREATE TABLE annotation_tag_entity (id varchar(16) NOT NULL, name varchar(24) NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE execution_annotations (id serial NOT NULL, "executionId" integer NOT NULL, vote varchar(6), note text,
  "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE execution_annotation_tags ("annotationId" integer NOT NULL, "tagId" varchar(24) NOT NULL);
CREATE TABLE folder (id varchar(36) NOT NULL, name varchar(128) NOT NULL, "parentFolderId" varchar(36),
  "projectId" varchar(36) NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE processed_data ("workflowId" varchar(36) NOT NULL, context varchar(255) NOT NULL, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  value text NOT NULL);
CREATE TABLE insights_metadata ("metaId" serial NOT NULL, "workflowId" varchar(16), "projectId" varchar(36),
  "workflowName" varchar(128) NOT NULL, "projectName" varchar(255) NOT NULL);
CREATE TABLE insights_raw (id serial NOT NULL, "metaId" integer NOT NULL, type integer NOT NULL, value bigint NOT NULL,
  "timestamp" timestamp(0) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE insights_by_period (id serial NOT NULL, "metaId" integer NOT NULL, type integer NOT NULL,
  value bigint NOT NULL, "periodUnit" integer NOT NULL, "periodStart" timestamp(0) with time zone DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE workflow_statistics (count integer DEFAULT 0, "latestEvent" timestamp(3) with time zone, name varchar(128) NOT NULL,
  "workflowId" varchar(36) NOT NULL, "rootCount" integer DEFAULT 0);
CREATE TABLE user_api_keys (id varchar(36) NOT NULL, "userId" uuid NOT NULL, label varchar(100) NOT NULL,
  "apiKey" varchar NOT NULL, scopes json, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE invalid_auth_token (token varchar(512) NOT NULL, "expiresAt" timestamp(3) with time zone NOT NULL);
CREATE TABLE test_run (id varchar(36) NOT NULL, "workflowId" varchar(36) NOT NULL, status varchar NOT NULL,
  "errorCode" varchar, "errorDetails" json, "runAt" timestamp(3) with time zone, "completedAt" timestamp(3) with time zone, metrics json, "createdAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3), "updatedAt" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
