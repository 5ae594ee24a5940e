// Imported first by bench/api.ts and bench/api-cluster.ts, before PostGraphile loads: grafast in production mode (as deployed).
process.env.GRAPHILE_ENV ??= 'production';

/** The benchmark API's log: the access log stays on (its cost is part of the API's), but only warnings and errors are printed. */
export function printWarnings(line: string): void {
  if (!/"level":\s*[1-3]\d\b/.test(line)) process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
}
