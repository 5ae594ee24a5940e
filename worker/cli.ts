/** What the CLI (`pgbpm worker`, `pgbpm start`) needs from the worker, behind one lazy require. */
import { workerConfigFromEnv, type WorkerOverrides } from './config';
import { httpConnectorConfigFromEnv } from './connectors/http';
import { WorkerConfigError } from './errors';
import { createWorkerLogger } from './logger';
import { startWorkerRuntime, type WorkerRuntime } from './runtime';

export function isWorkerConfigError(e: unknown): e is WorkerConfigError {
  return e instanceof WorkerConfigError;
}

/** The runtime configured by the environment and the command-line overrides. */
export function startWorkerFromEnv(connectionString: string, env: NodeJS.ProcessEnv, overrides: WorkerOverrides): Promise<WorkerRuntime> {
  const config = workerConfigFromEnv(env, overrides);
  const http = httpConnectorConfigFromEnv(env);
  const logger = createWorkerLogger({ level: env.PGBPM_LOG_LEVEL || 'info' });
  return startWorkerRuntime({ connectionString, config, http, logger });
}
