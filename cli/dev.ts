/**
 * Developer tools for the migrations (npm run db:commit / db:watch), on the
 * development database: DATABASE_URL, else the embedded cluster (.pgbpm/data).
 *
 *   node dist/cli/dev.js commit [--message TEXT]
 *       graphile-migrate commit: resets the shadow database (SHADOW_DATABASE_URL,
 *       else `<database>_shadow` on the same server, e.g. pgbpm_shadow), runs all
 *       committed migrations plus current.sql (with its --!include files inlined)
 *       there, writes db/migrations/committed/NNNNNN.sql, migrates the development
 *       database and blanks current.sql.
 *   node dist/cli/dev.js watch [--once]
 *       graphile-migrate watch: runs current.sql against the development database
 *       whenever it or a file under db/functions changes (--once: run it once).
 *   node dist/cli/dev.js worker-schema
 *       installs graphile-worker's schema in the database GM_DBURL names: the
 *       afterReset action that commit adds, since pgbpm's migrations grant on
 *       that schema and the shadow database is reset (emptied) before them.
 */
import { parseArgs } from 'node:util';
import { commit, watch } from 'graphile-migrate';
import { clearAllPools } from 'graphile-migrate/dist/pgReal';
import { parseUrl, resolveDatabase, withDatabase, type ResolvedDatabase } from './database';
import { installWorkerSchema } from '../worker/schema';
import { buildSettings, describePgError, migrateDatabase, type MigrateLog } from './migrate';

const log: MigrateLog = (level, message) => {
  if (level === 'debug') return;
  (level === 'info' ? process.stdout : process.stderr).write(`${message}\n`);
};

async function settingsFor(db: ResolvedDatabase): Promise<Awaited<ReturnType<typeof buildSettings>>> {
  const url = parseUrl(db.connectionString, 'database URL');
  const database = decodeURIComponent(url.pathname.slice(1));
  const settings = await buildSettings({
    connectionString: db.connectionString,
    shadowConnectionString: process.env.SHADOW_DATABASE_URL || withDatabase(db.connectionString, `${database}_shadow`),
    rootConnectionString: process.env.ROOT_DATABASE_URL || withDatabase(db.connectionString, 'postgres'),
    log,
  });
  // a reset database has no graphile_worker schema, which the migrations grant on (cli/migrate.ts installs it first)
  const installJobQueue = { _: 'command' as const, command: `"${process.execPath}" "${__filename}" worker-schema` };
  settings.afterReset = [...(settings.afterReset ?? []), installJobQueue];
  return settings;
}

async function installWorkerSchemaFromEnv(): Promise<number> {
  const url = process.env.GM_DBURL;
  if (!url) {
    process.stderr.write('dev.js worker-schema: GM_DBURL is not set (graphile-migrate sets it for afterReset actions)\n');
    return 2;
  }
  await installWorkerSchema(url, { log: (level, message) => level !== 'debug' && process.stderr.write(`${message}\n`) });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'worker-schema') return installWorkerSchemaFromEnv();
  if (command !== 'commit' && command !== 'watch') {
    process.stderr.write('usage: dev.js commit [--message TEXT] | dev.js watch [--once] | dev.js worker-schema\n');
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: { message: { type: 'string', short: 'm' }, once: { type: 'boolean', default: false } },
    strict: true,
  });
  const db = await resolveDatabase('app', { log: (m) => process.stderr.write(`${m}\n`) });
  try {
    const settings = await settingsFor(db);
    // graphile-migrate applies the new migration to this database directly
    // (not through migrateDatabase): the job queue schema it grants on must be there
    await installWorkerSchema(db.connectionString, { log: (level, message) => level !== 'debug' && process.stderr.write(`${message}\n`) });
    if (command === 'commit') {
      await commit(settings, values.message);
      clearAllPools();
      await migrateDatabase(db.connectionString, { authenticatorPassword: db.authenticatorPassword, log });
      return 0;
    }
    if (values.once) {
      await watch(settings, true);
      clearAllPools();
      await migrateDatabase(db.connectionString, { authenticatorPassword: db.authenticatorPassword, log });
      return 0;
    }
    await watch(settings, false);
    process.stderr.write('Watching db/migrations/current.sql and db/functions/ (Ctrl-C to stop) …\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    return 0;
  } finally {
    clearAllPools();
    await db.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`db ${process.argv[2] ?? ''}: ${describePgError(err)}\n`);
    process.exit(1);
  },
);
