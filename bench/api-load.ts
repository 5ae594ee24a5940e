/**
 * Load generator for bench/api.ts, run as a child process (fork) so that
 * autocannon does not share the API server's event loop. Receives one
 * LoadRequest on IPC, answers one LoadResult, then exits.
 */
import autocannon from 'autocannon';
import { percentile } from './stats';

export interface LoadRequest {
  url: string;
  seconds: number;
  connections: number;
  /** GraphQL request body (JSON). */
  body: string;
  /** Bearer tokens, used round-robin per request. */
  tokens: string[];
}

export interface LoadResult {
  /** Successful responses (200 without GraphQL errors) per second. */
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  ok: number;
  failed: number;
  /** First failed response body, if any. */
  sample?: string;
}


async function run(req: LoadRequest): Promise<LoadResult> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  let sample: string | undefined;
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  let finish!: (r: autocannon.Result) => void;
  let fail!: (e: unknown) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const instance = autocannon({
    url: req.url,
    connections: req.connections,
    duration: req.seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: req.body,
    requests: [
      {
        setupRequest: (request) => {
          const token = req.tokens[next++ % req.tokens.length];
          return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } };
        },
        onResponse: (status, body) => {
          if (status === 200 && !body.includes('"errors"')) ok++;
          else {
            failed++;
            sample ??= `${status} ${body.slice(0, 500)}`;
          }
        },
      },
    ],
  }, (err, result) => (err ? fail(err) : finish(result)));
  instance.on('response', (_client, _status, _bytes, responseTime) => {
    latencies.push(responseTime);
  });
  const result = await done;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.errors > 0 || result.timeouts > 0) {
    failed += result.errors + result.timeouts;
    sample ??= `${result.errors} connection errors, ${result.timeouts} timeouts`;
  }
  latencies.sort((a, b) => a - b);
  return {
    perSecond: ok / elapsed,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    ok,
    failed,
    sample,
  };
}

process.once('message', (message) => {
  run(message as LoadRequest).then(
    (result) => process.send!(result, () => process.exit(0)),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(1);
    },
  );
});
