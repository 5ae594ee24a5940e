import type { Task } from 'graphile-worker';

/** `pgbpm_ping`: does nothing; logs at debug. For health checks and the worker benchmark. */
export const pingTask: Task<'pgbpm_ping'> = (payload, helpers) => {
  helpers.logger.debug(`pgbpm_ping ${payload.sentAt === undefined ? '' : `sent at ${payload.sentAt}`}`);
};
