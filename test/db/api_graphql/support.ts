/**
 * The GraphQL API over real HTTP: each test file starts one server (ephemeral
 * port, its own test database, logging in as bpm_authenticator) and talks to
 * it with node's fetch and JWTs minted here with jose.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { startApiServer, type ApiServer } from '../../../server/app';
import { claimNamesFromEnv, type AuthConfig, type ServerConfig } from '../../../server/config';
import type { TestDb } from '../../helpers/db';
import { FIXTURES } from '../../helpers/engine';

// Every file using this starts a server in beforeAll (schema build, database clone): on a loaded,
// shared machine that exceeded jest's default 5 s for hooks. Applies to each test file importing this.
jest.setTimeout(20_000);

export const SECRET = 'pgbpm-api-test-secret-0123456789abcdef';
export const SECRET_BYTES = new TextEncoder().encode(SECRET);
export const ISSUER = 'https://idp.pgbpm.test/';
export const AUDIENCE = 'pgbpm-api';

export interface GraphQLError {
  message: string;
  path?: Array<string | number>;
  extensions?: { code?: string; errorId?: string; [key: string]: unknown };
}

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: GraphQLError[];
}

export interface Reply<T> {
  status: number;
  headers: Headers;
  body: GraphQLResponse<T>;
}

export interface TestApi {
  api: ApiServer;
  /** JSON lines the server logged (requests, masked errors, verification problems). */
  logs: string[];
  /** POSTs a GraphQL request; token null: no Authorization header. */
  gql<T = Record<string, unknown>>(
    token: string | null,
    query: string,
    variables?: Record<string, unknown>,
    options?: { operationName?: string; headers?: Record<string, string> },
  ): Promise<Reply<T>>;
  /** Like gql, but fails the test on HTTP or GraphQL errors, and returns data. */
  data<T = Record<string, unknown>>(token: string, query: string, variables?: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

export interface StartOptions {
  production?: boolean;
  maxRequestBytes?: number;
  auth?: Partial<AuthConfig>;
  /** Limits, metrics and logging options (server/config.ts). */
  config?: Pick<
    ServerConfig,
    | 'statementTimeoutMs'
    | 'rateLimit'
    | 'rateLimitBurst'
    | 'maxQueryDepth'
    | 'maxQueryFields'
    | 'maxPageSize'
    | 'metricsToken'
    | 'metricsDatabaseUrl'
    | 'logLevel'
    | 'maxSubscriptionsPerConnection'
    | 'eventPollIntervalMs'
  >;
}

/** The server logs in with `db.urls.authenticator` (any database with the schema: a test clone or a cluster of its own). */
export async function startTestApi(db: Pick<TestDb, 'urls'>, options: StartOptions = {}): Promise<TestApi> {
  const logs: string[] = [];
  const api = await startApiServer({
    connectionString: db.urls.authenticator,
    auth: {
      secret: SECRET_BYTES,
      jwksUrl: null,
      issuer: ISSUER,
      audience: AUDIENCE,
      claims: claimNamesFromEnv({}),
      clockToleranceSeconds: 0,
      usingDevSecret: false,
      ...options.auth,
    },
    production: options.production ?? false,
    maxRequestBytes: options.maxRequestBytes ?? 1024 * 1024,
    poolSize: 4,
    port: 0,
    host: '127.0.0.1',
    ...options.config,
    log: (line) => logs.push(line),
  });

  const gql = async <T>(
    token: string | null,
    query: string,
    variables?: Record<string, unknown>,
    extra: { operationName?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply<T>> => {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', ...extra.headers };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(api.graphqlUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables, operationName: extra.operationName }),
    });
    const text = await res.text();
    let body: GraphQLResponse<T>;
    try {
      body = JSON.parse(text) as GraphQLResponse<T>;
    } catch {
      throw new Error(`HTTP ${res.status}: not JSON: ${text.slice(0, 500)}`);
    }
    return { status: res.status, headers: res.headers, body };
  };

  const data = async <T>(token: string, query: string, variables?: Record<string, unknown>): Promise<T> => {
    const reply = await gql<T>(token, query, variables);
    if (reply.status !== 200 || reply.body.errors || !reply.body.data) {
      throw new Error(`GraphQL request failed (HTTP ${reply.status}): ${JSON.stringify(reply.body)}`);
    }
    return reply.body.data;
  };

  return { api, logs, gql, data, close: () => api.close() };
}

export interface Claims extends JWTPayload {
  tenant?: string;
  roles?: string[] | string;
  groups?: string[] | string;
}

/** An HS256 token with the test issuer and audience, valid for 10 minutes unless overridden. */
export async function token(claims: Claims, options: { secret?: Uint8Array; expiresAt?: number | string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? '10m')
    .sign(options.secret ?? SECRET_BYTES);
}

export function fixture(name: string): { name: string; xml: string } {
  return { name, xml: fs.readFileSync(path.join(FIXTURES, name), 'utf8') };
}

export const DEPLOY = `
  mutation Deploy($files: [DeployFileInput!]!) {
    deployProcess(input: { files: $files }) {
      definitions { id key version name }
      decisions { key version name }
      problems { file elementId message }
      warnings { file elementId message }
    }
  }`;

export interface DeployData {
  deployProcess: {
    definitions: Array<{ id: string; key: string; version: number; name: string | null }>;
    decisions: Array<{ key: string; version: number; name: string | null }>;
    problems: Array<{ file: string; elementId: string | null; message: string }>;
    warnings: Array<{ file: string; elementId: string | null; message: string }>;
  };
}

export const START = `
  mutation Start($key: String!, $variables: JSON, $businessKey: String) {
    startProcess(input: { processKey: $key, variables: $variables, businessKey: $businessKey }) {
      result { id state variables businessKey startedBy }
    }
  }`;

export interface StartData {
  startProcess: { result: { id: string; state: string; variables: Record<string, unknown>; businessKey: string | null; startedBy: string | null } };
}

export const COMPLETE = `
  mutation Complete($id: UUID!, $variables: JSON) {
    completeTask(input: { taskId: $id, variables: $variables }) {
      result { id state completedBy }
    }
  }`;

export interface CompleteData {
  completeTask: { result: { id: string; state: string; completedBy: string | null } } | null;
}

export const USER_TASKS = `
  query Tasks($condition: UserTaskCondition) {
    userTasks(condition: $condition, orderBy: [CREATED_AT_ASC, ID_ASC]) {
      totalCount
      nodes { id instanceId elementId name state assignee candidateGroups }
    }
  }`;

export interface UserTasksData {
  userTasks: {
    totalCount: number;
    nodes: Array<{ id: string; instanceId: string; elementId: string; name: string | null; state: string; assignee: string | null; candidateGroups: string[] }>;
  };
}

export const INSTANCES = `
  query Instances {
    processInstances(orderBy: [STARTED_AT_ASC, ID_ASC]) {
      totalCount
      nodes { id state businessKey endedAt definition { key version } }
    }
  }`;

export interface InstancesData {
  processInstances: {
    totalCount: number;
    nodes: Array<{ id: string; state: string; businessKey: string | null; endedAt: string | null; definition: { key: string; version: number } | null }>;
  };
}
