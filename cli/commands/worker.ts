import { err } from '../io';

export const summary = 'run the job worker (not in this version)';

export function run(_args: string[]): Promise<number> {
  err(
    'pgbpm worker: the job worker (service tasks, timers, retries) arrives in a later version of pgbpm;\n' +
      'this version has no worker. Nothing was started.',
  );
  return Promise.resolve(2);
}
