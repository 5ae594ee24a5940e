/**
 * pgbpm's worker: the API for handler modules, and the runtime for embedding.
 *
 *   const { defineHandlers, BpmnError, NonRetryableError } = require('pgbpm/dist/worker');
 *
 * See README "Worker" and worker/handlers.ts.
 */
export { BpmnError, NonRetryableError, isBpmnError, type Variables } from './errors';
export {
  defineHandlers,
  type BackoffOptions,
  type Handler,
  type HandlerMap,
  type HandlerOptions,
  type HandlerSpec,
  type TaskContext,
  type TaskLogger,
} from './handlers';
export { httpConnector, type HttpConnectorOptions, type HttpResponseVariable } from './connectors/http';
export { registerTask, asTenant } from './tasks';
export { startWorkerRuntime, type WorkerRuntime, type WorkerRuntimeOptions } from './runtime';
export { workerConfigFromEnv, type WorkerConfig } from './config';
