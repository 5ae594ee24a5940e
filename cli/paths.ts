import fs from 'node:fs';
import path from 'node:path';

let cachedRoot: string | undefined;

/**
 * The project root: the nearest directory above this file whose package.json
 * is pgbpm's. Works from the TypeScript sources (cli/) and from the build
 * output (dist/cli/) alike.
 */
export function projectRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      try {
        const pkg: unknown = JSON.parse(fs.readFileSync(candidate, 'utf8'));
        if (typeof pkg === 'object' && pkg !== null && (pkg as { name?: unknown }).name === 'pgbpm') {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`pgbpm: cannot find the project root (no package.json named "pgbpm" above ${__dirname})`);
    }
    dir = parent;
  }
}

/** Where embedded clusters and their logs live: PGBPM_DATA_DIR, else <root>/.pgbpm. */
export function dataRoot(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.PGBPM_DATA_DIR;
  return fromEnv ? path.resolve(fromEnv) : path.join(projectRoot(), '.pgbpm');
}

/** The graphile-migrate migrations folder: PGBPM_MIGRATIONS_FOLDER, else <root>/db/migrations. */
export function migrationsFolder(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.PGBPM_MIGRATIONS_FOLDER;
  return fromEnv ? path.resolve(fromEnv) : path.join(projectRoot(), 'db', 'migrations');
}
