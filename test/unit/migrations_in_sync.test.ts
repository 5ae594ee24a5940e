/**
 * The engine's SQL lives in db/functions and reaches the database only
 * through migrations (`--!include`, inlined on commit). A function file edited
 * without including it in db/migrations/current.sql would silently never be
 * applied: every file must equal its last inlined copy in the committed
 * migrations, or be included by current.sql (the next migration).
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const FUNCTIONS = path.join(ROOT, 'db', 'functions');
const MIGRATIONS = path.join(ROOT, 'db', 'migrations');

function functionFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? functionFiles(path.join(dir, entry.name), `${prefix}${entry.name}/`)
      : entry.name.endsWith('.sql')
        ? [`${prefix}${entry.name}`]
        : [],
  );
}

/** The last inlined copy of every included file, in migration order. */
function lastIncludedCopies(): Map<string, string> {
  const copies = new Map<string, string>();
  const committed = path.join(MIGRATIONS, 'committed');
  for (const file of fs.readdirSync(committed).filter((f) => f.endsWith('.sql')).sort()) {
    const text = fs.readFileSync(path.join(committed, file), 'utf8');
    const block = /^--! Included (\S+)\n([\s\S]*?)\n?--! EndIncluded \1$/gm;
    for (const match of text.matchAll(block)) copies.set(match[1], match[2]);
  }
  return copies;
}

const normalise = (sql: string): string => sql.replace(/\s+$/, '');

test('every db/functions file is committed as it is, or included by current.sql', () => {
  const copies = lastIncludedCopies();
  const pending = new Set(
    [...fs.readFileSync(path.join(MIGRATIONS, 'current.sql'), 'utf8').matchAll(/^--!include (\S+)$/gm)].map((m) => m[1]),
  );
  const stale = functionFiles(FUNCTIONS).filter((file) => {
    if (pending.has(file)) return false;
    const committed = copies.get(file);
    return committed === undefined || normalise(committed) !== normalise(fs.readFileSync(path.join(FUNCTIONS, file), 'utf8'));
  });
  expect(stale).toEqual([]);
});

test('the migrations include the engine SQL through the fixtures link', () => {
  expect(fs.realpathSync(path.join(MIGRATIONS, 'fixtures'))).toBe(fs.realpathSync(FUNCTIONS));
  expect(lastIncludedCopies().size).toBeGreaterThan(10);
});
