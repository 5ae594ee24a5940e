-- DMN decisions: deployed with bpm.deploy, evaluated by business rule tasks
-- (camunda:decisionRef, zeebe:calledDecision) and bpm.evaluate_decision
create table if not exists bpm.decision_definition (
  tenant_id text not null,
  id uuid not null default gen_random_uuid(),
  key text not null,
  version int not null,
  name text,
  version_tag text,
  deployment_id uuid not null,
  resource_hash text not null,
  requires text[] not null default '{}',
  logic jsonb not null,
  deployed_at timestamptz not null default now(),
  constraint decision_definition_pkey primary key (tenant_id, id),
  constraint decision_definition_key_version_key unique (tenant_id, key, version),
  constraint decision_definition_deployment_fkey foreign key (tenant_id, deployment_id)
    references bpm.deployment (tenant_id, id) on delete cascade,
  constraint decision_version_is_positive check (version > 0),
  constraint decision_logic_is_table_or_literal check (logic ->> 'kind' in ('table', 'literal'))
);
create index if not exists decision_definition_deployment_idx on bpm.decision_definition (tenant_id, deployment_id);
comment on table bpm.decision_definition is E'A deployed, immutable version of a DMN decision (a decision table or a literal expression). Deploying a changed DMN file creates version n+1 of each of its decisions.';
comment on column bpm.decision_definition.tenant_id is E'Owning tenant.';
comment on column bpm.decision_definition.id is E'Decision definition id.';
comment on column bpm.decision_definition.key is E'The DMN decision id; business rule tasks and evaluate_decision name it.';
comment on column bpm.decision_definition.version is E'1, 2, … per key and tenant.';
comment on column bpm.decision_definition.name is E'The decision name from the model.';
comment on column bpm.decision_definition.version_tag is E'camunda:versionTag of the decision, if any (binding versionTag).';
comment on column bpm.decision_definition.deployment_id is E'The deployment (DMN file) it came from; its required decisions come from the same one.';
comment on column bpm.decision_definition.resource_hash is E'sha256 of the DMN file; an identical redeploy creates no new version.';
comment on column bpm.decision_definition.requires is E'Keys of the decisions of the same file it requires (their results are inputs it sees).';
comment on column bpm.decision_definition.logic is E'The compiled decision table or literal expression the engine evaluates (see compiler/graph.ts, DecisionLogic).';
comment on column bpm.decision_definition.deployed_at is E'When this version was deployed.';
--!include elements/decision.sql
--!include api/deploy.sql
--!include engine/scope.sql
--!include engine/run.sql
--!include instance/migrate.sql
--!include setup/policies.sql
--!include setup/grants.sql
--!include setup/ownership.sql
--!include elements/multi_instance.sql
