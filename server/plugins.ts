/**
 * pgbpm's additions to the PostGraphile schema:
 *
 * - BpmSmartTagsPlugin: `bpm.deploy(jsonb)` takes compiled graphs, which only
 *   the BPMN compiler can produce, so it is not exposed (behavior `-*`);
 *   neither are `bpm.register_event_listener` and `bpm.register_task_listener`
 *   (the server's and the workers' NOTIFY leases);
 *   shorter relation names; a few more filterable columns;
 * - DeployProcessPlugin: `deployProcess(input: {files: [{name, xml}]})`
 *   compiles the files with compiler/ and, when there is no problem, calls
 *   bpm.deploy through the request's own pg client and pgSettings (role,
 *   tenant, user), so privileges and RLS apply exactly as for every other call;
 * - PrimaryKeyIdPlugin: the `id` column of a table stays `id` (a UUID, what
 *   the mutations take); the Relay global id is `nodeId`;
 * - NoIntrospectionPlugin: rejects __schema/__type queries (production).
 */
import { lambda, SafeError } from 'postgraphile/grafast';
import { sideEffectWithPgClientTransaction } from 'postgraphile/@dataplan/pg';
import { NoSchemaIntrospectionCustomRule } from 'postgraphile/graphql';
import { extendSchema, gql, jsonPgSmartTags } from 'postgraphile/utils';
import { compileBpmnFiles, type CompileFilesResult, type CompileProblem } from '../compiler';

/** Most files accepted in one deployProcess call. */
export const MAX_DEPLOY_FILES = 100;

/**
 * Smart tags for the `bpm` schema, kept here rather than in database comments:
 * - bpm.deploy, the NOTIFY leases (register_event_listener, register_task_listener) and the worker's job entry points
 *   (fire_timer, fire_due_timers, continue_async, process_task_deadline, deliver_deferred) are hidden (behavior `-*`);
 * - relations get short names (`instance`, `userTasks`, …) instead of
 *   `tenantInstance` / `userTasksByTenantIdAndInstanceId` (every key leads
 *   with tenant_id);
 * - the columns task lists and monitoring filter and sort by (state,
 *   assignee, dates, an instance's event subscriptions, …) may be used in `condition` and `orderBy` although
 *   they have no index of their own (PostGraphile allows only indexed ones
 *   by default; tag `isIndexed`); all queries are confined to one tenant by RLS.
 */
const filterable = { tags: { isIndexed: true as const } };
const relation = (fieldName: string, foreignFieldName: string) => ({ tags: { fieldName, foreignFieldName } });

export const BpmSmartTagsPlugin: GraphileConfig.Plugin = jsonPgSmartTags(
  {
    version: 1,
    config: {
      procedure: {
        'bpm.deploy': { tags: { behavior: '-*' } },
        // entry points of the worker's jobs, not of applications
        'bpm.fire_timer': { tags: { behavior: '-*' } },
        'bpm.fire_due_timers': { tags: { behavior: '-*' } },
        'bpm.continue_async': { tags: { behavior: '-*' } },
        'bpm.process_task_deadline': { tags: { behavior: '-*' } },
        'bpm.deliver_deferred': { tags: { behavior: '-*' } },
        // server-side: the API server holds NOTIFY leases for its subscriptions (server/subscriptions/leases.ts);
        // a client must not switch NOTIFY (and its cost to every commit of the tenant) on by itself
        'bpm.register_event_listener': { tags: { behavior: '-*' } },
        // worker-side, for the same reason: workers hold it on their LISTEN connection (worker/external/wakeup.ts)
        'bpm.register_task_listener': { tags: { behavior: '-*' } },
      },
      class: {
        'bpm.process_definition': {
          attribute: { deployed_at: filterable },
          constraint: { process_definition_deployment_fkey: relation('deployment', 'processDefinitions') },
        },
        'bpm.process_instance': {
          attribute: {
            state: filterable,
            business_key: filterable,
            definition_id: filterable,
            started_by: filterable,
            started_at: filterable,
          },
          constraint: {
            process_instance_definition_fkey: relation('definition', 'processInstances'),
            process_instance_parent_fkey: relation('parentInstance', 'childInstances'),
          },
        },
        'bpm.user_task': {
          attribute: {
            state: filterable,
            assignee: filterable,
            element_id: filterable,
            priority: filterable,
            due_at: filterable,
            created_at: filterable,
          },
          constraint: { user_task_instance_fkey: relation('instance', 'userTasks') },
        },
        'bpm.external_task': {
          attribute: { state: filterable, topic: filterable, element_id: filterable, created_at: filterable },
          constraint: { external_task_instance_fkey: relation('instance', 'externalTasks') },
        },
        'bpm.event_subscription': {
          // what an instance waits for (its timers, messages and signals), and timers by due time
          attribute: { instance_id: filterable, kind: filterable, element_id: filterable, due_at: filterable },
        },
        'bpm.incident': {
          attribute: { incident_type: filterable, created_at: filterable },
          constraint: {
            incident_instance_fkey: relation('instance', 'incidents'),
            incident_external_task_fkey: relation('externalTask', 'incidents'),
          },
        },
      },
    },
  },
  null,
  { name: 'PgbpmSmartTagsPlugin', description: 'Smart tags for the bpm schema (hide bpm.deploy, relation names, filterable columns)' },
);

export const PrimaryKeyIdPlugin: GraphileConfig.Plugin = {
  name: 'PgbpmPrimaryKeyIdPlugin',
  version: '0.1.0',
  description: 'Keeps id columns as `id` (Amber renames them rowId) and names the Relay global id `nodeId`',
  inflection: {
    replace: {
      nodeIdFieldName() {
        return 'nodeId';
      },
      _attributeName(previous, _options, details) {
        if (!previous) throw new Error('PgbpmPrimaryKeyIdPlugin: no _attributeName inflector to replace');
        return previous({ ...details, skipRowId: true });
      },
    },
  },
};

export const NoIntrospectionPlugin: GraphileConfig.Plugin = {
  name: 'PgbpmNoIntrospectionPlugin',
  version: '0.1.0',
  description: 'Rejects GraphQL introspection (__schema, __type) during validation',
  grafserv: {
    middleware: {
      setPreset(next, event) {
        event.validationRules.push(NoSchemaIntrospectionCustomRule);
        return next();
      },
    },
  },
};

interface DeployFile {
  name: string;
  xml: string;
}

interface DeployedDefinition {
  id: string;
  key: string;
  version: number;
  name: string | null;
}

interface DeployPayload {
  definitions: DeployedDefinition[];
  decisions: DeployedDefinition[];
  problems: CompileProblem[];
  warnings: CompileProblem[];
}

function asDeployFiles(value: unknown): DeployFile[] {
  // GraphQL has validated the shape already ([DeployFileInput!]!); this narrows the type.
  if (!Array.isArray(value)) throw new SafeError('files must be a list', { code: 'BAD_USER_INPUT' });
  return value.map((f: unknown): DeployFile => {
    const file = f as Partial<Record<keyof DeployFile, unknown>> | null;
    if (!file || typeof file.name !== 'string' || typeof file.xml !== 'string') {
      throw new SafeError('each file needs a name and xml', { code: 'BAD_USER_INPUT' });
    }
    return { name: file.name, xml: file.xml };
  });
}

async function compileFiles(raw: unknown): Promise<CompileFilesResult> {
  const files = asDeployFiles(raw);
  if (files.length === 0) throw new SafeError('files must not be empty', { code: 'BAD_USER_INPUT' });
  if (files.length > MAX_DEPLOY_FILES) {
    throw new SafeError(`at most ${MAX_DEPLOY_FILES} files per deployment`, { code: 'BAD_USER_INPUT' });
  }
  return compileBpmnFiles(files);
}

export const DeployProcessPlugin: GraphileConfig.Plugin = extendSchema((build) => {
  const executor = build.input.pgRegistry.pgExecutors.main;
  if (!executor) throw new Error('DeployProcessPlugin: no pg executor "main" (is the bpm pgService configured?)');
  return {
    typeDefs: gql`
      """
      A BPMN or DMN file to deploy: its name (kept with the deployment, used in problems) and its XML.
      """
      input DeployFileInput {
        name: String!
        xml: String!
      }

      input DeployProcessInput {
        """
        The files of one deployment; deployed together in one transaction, or not at all.
        """
        files: [DeployFileInput!]!
      }

      """
      A process definition created (or, for a byte-identical file, found) by deployProcess.
      """
      type DeployedDefinition {
        id: UUID!
        key: String!
        version: Int!
        name: String
      }

      """
      Why a file cannot be deployed (or, as a warning, what was ignored).
      """
      type DeployProblem {
        file: String!
        """
        The BPMN element id, or null for problems of the whole file.
        """
        elementId: String
        message: String!
      }

      type DeployProcessPayload {
        """
        The deployed process definitions; empty when there are problems.
        """
        definitions: [DeployedDefinition!]!
        """
        The decision definitions of the DMN files (created, or for a byte-identical file found); empty when there are problems.
        """
        decisions: [DeployedDefinition!]!
        """
        Every problem of every file; when not empty, nothing was deployed.
        """
        problems: [DeployProblem!]!
        warnings: [DeployProblem!]!
      }

      extend type Mutation {
        """
        Compiles BPMN and DMN files and deploys them for the caller's tenant (roles bpm_admin, bpm_designer); DMN decisions become decisionDefinitions.
        If any file has a problem, returns all problems and deploys nothing.
        """
        deployProcess(input: DeployProcessInput!): DeployProcessPayload
      }
    `,
    objects: {
      Mutation: {
        plans: {
          deployProcess(_$root, fieldArgs) {
            const $compiled = lambda(fieldArgs.getRaw(['input', 'files']), compileFiles);
            return sideEffectWithPgClientTransaction(executor, $compiled, async (client, compiled): Promise<DeployPayload> => {
              if (!compiled.ok) return { definitions: [], decisions: [], problems: compiled.problems, warnings: compiled.warnings };
              const { rows } = await client.query<DeployedDefinition>({
                text: 'select id, key, version, name from bpm.deploy($1::jsonb)',
                values: [JSON.stringify(compiled.resources)],
              });
              // each decision of the DMN files: the latest version deployed from that file
              const decisions = await client.query<DeployedDefinition>({
                text: `select distinct on (d.key) d.id, d.key, d.version, d.name from bpm.decision_definition d
                       where d.resource_hash = any($1::text[]) and d.key = any($2::text[]) order by d.key, d.version desc`,
                values: [compiled.resources.map((r) => r.hash), compiled.resources.flatMap((r) => r.decisions.map((d) => d.key))],
              });
              return { definitions: [...rows], decisions: [...decisions.rows], problems: [], warnings: compiled.warnings };
            });
          },
        },
      },
    },
  };
}, 'PgbpmDeployProcessPlugin');
