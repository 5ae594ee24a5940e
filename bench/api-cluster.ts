/**
 * The API of bench/api.ts in several processes (BENCH_API_PROCESSES > 1), as
 * `pgbpm serve` would run behind a load balancer: a node:cluster primary,
 * forked by the benchmark, forks that many workers, each an API server (the
 * benchmark's settings) on one shared port; the primary hands connections
 * to the workers in turn. Receives one ClusterRequest on IPC, answers one
 * ClusterReady (the URL and the workers' pids, whose CPU the benchmark
 * reads from /proc), and runs until it is sent SIGTERM.
 */
import { printWarnings } from './api-env';
import cluster from 'node:cluster';
import net from 'node:net';
import { startApiServer } from '../server/app';
import { serverConfigFromEnv } from '../server/config';

export interface ClusterRequest {
  processes: number;
  /** The bpm_authenticator login. */
  connectionString: string;
  jwtSecret: string;
  poolSize: number;
}

export interface ClusterReady {
  graphqlUrl: string;
  pids: number[];
}

const HOST = '127.0.0.1';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address() as net.AddressInfo;
      probe.close(() => resolve(address.port));
    });
  });
}

async function primary(request: ClusterRequest): Promise<void> {
  const port = await freePort();
  const workers = Array.from({ length: request.processes }, () =>
    cluster.fork({ BENCH_CLUSTER_PORT: String(port), BENCH_CLUSTER_REQUEST: JSON.stringify(request) }),
  );
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.once('listening', () => resolve());
          worker.once('exit', (code) => reject(new Error(`API worker ${worker.process.pid} exited with ${code} before listening`)));
        }),
    ),
  );
  const ready: ClusterReady = { graphqlUrl: `http://${HOST}:${port}/graphql`, pids: workers.map((w) => w.process.pid as number) };
  process.send?.(ready);
  process.once('SIGTERM', () => {
    for (const worker of workers) worker.kill('SIGTERM');
    process.exit(0);
  });
}

async function worker(): Promise<void> {
  const request = JSON.parse(process.env.BENCH_CLUSTER_REQUEST ?? '{}') as ClusterRequest;
  // the benchmark's settings (bench/api.ts): production, no per-tenant rate limit
  const config = serverConfigFromEnv({ PGBPM_JWT_SECRET: request.jwtSecret, NODE_ENV: 'production', PGBPM_RATE_LIMIT: '0' });
  const api = await startApiServer({
    ...config,
    connectionString: request.connectionString,
    poolSize: request.poolSize,
    port: Number(process.env.BENCH_CLUSTER_PORT),
    host: HOST,
    log: printWarnings,
  });
  process.once('SIGTERM', () => {
    void api.close().finally(() => process.exit(0));
  });
}

if (cluster.isPrimary) {
  process.once('message', (m) => {
    primary(m as ClusterRequest).catch((err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(1);
    });
  });
} else {
  worker().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  });
}
