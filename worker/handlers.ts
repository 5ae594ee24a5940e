/**
 * The handler API: what a user's handler module exports and what a handler
 * gets and returns.
 *
 *   // handlers.js
 *   const { defineHandlers, BpmnError } = require('pgbpm/dist/worker');
 *   module.exports = defineHandlers({
 *     'charge-card': async (variables, ctx) => {
 *       const receipt = await charge(variables.cardToken, variables.amount, { signal: ctx.signal });
 *       return { receiptId: receipt.id };                  // merged into the instance
 *     },
 *     'send-mail': { retries: 5, backoff: { baseMs: 5000 }, handler: async (variables, ctx) => { … } },
 *   });
 *
 * A handler's topic is its key: the `camunda:topic` (or `zeebe:taskDefinition
 * type`) of the service tasks it serves.
 */
import path from 'node:path';
import { WorkerConfigError, errorMessage, type Variables } from './errors';

export type { Variables } from './errors';

/** Log methods a handler gets (JSON lines with the task's ids). */
export interface TaskLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What a handler knows about the task it works on. */
export interface TaskContext {
  /** The external task (bpm.external_task.id). */
  taskId: string;
  instanceId: string;
  /** BPMN id of the service task. */
  elementId: string;
  topic: string;
  /** The service task's zeebe:taskHeaders and camunda:properties (name → value; empty when it has none): configuration for the handler. */
  headers: Readonly<Record<string, string>>;
  tenant: string;
  /** This worker's id (the lock holder). */
  workerId: string;
  /** 1 on the first try, 2 on the first retry, … */
  attempt: number;
  /** Retries this handler gets after a first failure (its `retries`). */
  retries: number;
  /** How many more failures will be retried; at 0 the next failure raises an incident. */
  retriesLeft: number;
  /** When the lock ends: after it, another worker may take the task (the handler then runs twice). */
  lockedUntil: Date;
  /** Fires when the worker shuts down and its shutdown timeout has passed: stop and throw. */
  signal: AbortSignal;
  logger: TaskLogger;
}

/**
 * A handler: returns the variables to set (or nothing), throws a BpmnError for
 * a business error, or throws anything else for a technical failure (retried
 * with back-off, then an incident). It may run more than once for one task
 * (at-least-once): make its effects idempotent, e.g. keyed by ctx.taskId.
 */
export type Handler = (variables: Variables, ctx: TaskContext) => Promise<Variables | void> | Variables | void;

export interface BackoffOptions {
  /** Delay before the first retry (ms); doubles with each failure. */
  baseMs?: number;
  /** Longest delay (ms). */
  maxMs?: number;
}

export interface HandlerOptions {
  handler: Handler;
  /** Retries after the first failure before an incident is raised (default: the worker's, 3). */
  retries?: number;
  backoff?: BackoffOptions;
  /** How long a fetched task stays locked to this worker (ms; default: the worker's, 5 min). */
  lockDurationMs?: number;
}

export type HandlerSpec = Handler | HandlerOptions;
export type HandlerMap = Readonly<Record<string, HandlerSpec>>;

/** A handler with every option resolved. */
export interface ResolvedHandler {
  topic: string;
  handler: Handler;
  retries: number;
  backoff: Required<BackoffOptions>;
  lockDurationMs: number;
}

export interface HandlerDefaults {
  retries: number;
  backoff: Required<BackoffOptions>;
  lockDurationMs: number;
}

/** Checks and returns the handler map (typed; use it as the module's default export). */
export function defineHandlers<T extends HandlerMap>(handlers: T): T {
  validateHandlers(handlers, 'defineHandlers');
  return handlers;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function validateHandlers(value: unknown, where: string): asserts value is HandlerMap {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WorkerConfigError(`${where}: expected an object of topic → handler, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  for (const [topic, spec] of Object.entries(value)) {
    if (topic === '') throw new WorkerConfigError(`${where}: a topic must not be empty`);
    if (typeof spec === 'function') continue;
    if (typeof spec !== 'object' || spec === null || typeof (spec as { handler?: unknown }).handler !== 'function') {
      throw new WorkerConfigError(`${where}: topic "${topic}": expected a function or { handler: function, … }`);
    }
    const o = spec as HandlerOptions;
    if (o.retries !== undefined && !isNonNegativeInteger(o.retries)) {
      throw new WorkerConfigError(`${where}: topic "${topic}": retries must be an integer of at least 0, got ${String(o.retries)}`);
    }
    if (o.lockDurationMs !== undefined && !(isNonNegativeInteger(o.lockDurationMs) && o.lockDurationMs > 0)) {
      throw new WorkerConfigError(`${where}: topic "${topic}": lockDurationMs must be a positive integer, got ${String(o.lockDurationMs)}`);
    }
    for (const key of ['baseMs', 'maxMs'] as const) {
      const v = o.backoff?.[key];
      if (v !== undefined && !isNonNegativeInteger(v)) {
        throw new WorkerConfigError(`${where}: topic "${topic}": backoff.${key} must be an integer of at least 0 (ms), got ${String(v)}`);
      }
    }
  }
}

/** Resolves every handler's options against the worker's defaults. */
export function resolveHandlers(handlers: HandlerMap, defaults: HandlerDefaults): ResolvedHandler[] {
  validateHandlers(handlers, 'handlers');
  return Object.entries(handlers).map(([topic, spec]) => {
    const o: HandlerOptions = typeof spec === 'function' ? { handler: spec } : spec;
    return {
      topic,
      handler: o.handler,
      retries: o.retries ?? defaults.retries,
      backoff: { baseMs: o.backoff?.baseMs ?? defaults.backoff.baseMs, maxMs: o.backoff?.maxMs ?? defaults.backoff.maxMs },
      lockDurationMs: o.lockDurationMs ?? defaults.lockDurationMs,
    };
  });
}

/**
 * Loads a handler module (CommonJS, or an ES module Node can require) and
 * returns its handler map: the default export, else module.exports.
 */
export function loadHandlerModule(file: string): HandlerMap {
  const resolved = path.resolve(file);
  let mod: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolved);
  } catch (e) {
    throw new WorkerConfigError(`cannot load the handler module ${resolved}: ${errorMessage(e)}`);
  }
  const exported =
    typeof mod === 'object' && mod !== null && 'default' in mod ? (mod as { default: unknown }).default : mod;
  validateHandlers(exported, `handler module ${resolved}`);
  if (Object.keys(exported).length === 0) throw new WorkerConfigError(`handler module ${resolved} defines no handler`);
  return exported;
}
