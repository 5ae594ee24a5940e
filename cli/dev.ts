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
 */
import { parseArgs } from 'node:util';
import { commit, watch } from 'graphile-migrate';
import { clearAllPools } from 'graphile-migrate/dist/pgReal';
import { parseUrl, resolveDatabase, withDatabase, type ResolvedDatabase } from './database';
import { buildSettings, describePgError, migrateDatabase, type MigrateLog } from './migrate';

const log: MigrateLog = (level, message) => {
  if (level === 'debug') return;
  (level === 'info' ? process.stdout : process.stderr).write(`${message}\n`);
};

async function settingsFor(db: ResolvedDatabase): Promise<Awaited<ReturnType<typeof buildSettings>>> {
  const url = parseUrl(db.connectionString, 'database URL');
  const database = decodeURIComponent(url.pathname.slice(1));
  return buildSettings({
    connectionString: db.connectionString,
    shadowConnectionString: process.env.SHADOW_DATABASE_URL || withDatabase(db.connectionString, `${database}_shadow`),
    rootConnectionString: process.env.ROOT_DATABASE_URL || withDatabase(db.connectionString, 'postgres'),
    log,
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'commit' && command !== 'watch') {
    process.stderr.write('usage: dev.js commit [--message TEXT] | dev.js watch [--once]\n');
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
