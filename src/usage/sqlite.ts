// Opens SQLite: Node's built-in node:sqlite (Node >= 22.13: 22.5-22.12 need a flag) when it loads, else better-sqlite3
// (optional dependency).
import { createRequire } from 'node:module';

/** The part of a prepared statement both drivers share. */
export interface SqlStatement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The part of a database both drivers share. */
export interface SqlDb {
  exec(sql: string): void;
  prepare(sql: string): SqlStatement;
  close(): void;
}

/** An opened database and which driver opened it. */
export interface OpenedDb {
  db: SqlDb;
  driver: 'node:sqlite' | 'better-sqlite3';
}

type Ctor = new (file: string, options?: Record<string, unknown>) => SqlDb;

/** The warning Node 22 gives once when node:sqlite loads (Node 24.21 no longer gives it). */
const SQLITE_WARNING = 'SQLite is an experimental feature';

/** The fix when no driver loads: a Node that has one built in, or the optional package (rebuilt for this Node). */
export const NO_DRIVER_FIX =
  'Fix: run llmserve on Node >= 22.13 (its built-in node:sqlite), or install better-sqlite3@12 beside it (npm install better-sqlite3@12; after a Node upgrade: npm rebuild better-sqlite3)';

/** Neither SQLite driver loads: the machine lacks one, not the store's directory its permissions. */
export class NoSqliteDriver extends Error {}

let cached: Promise<{ ctor: Ctor; driver: OpenedDb['driver'] } | { error: string }> | null = null;

/** Finds a driver once per process; the error names both that were tried. */
export function sqliteDriver(): Promise<{ ctor: Ctor; driver: OpenedDb['driver'] } | { error: string }> {
  cached ??= (async () => {
    const reasons: string[] = [];
    try {
      // A variable specifier keeps bundlers and Node 20's type definitions away from this optional built-in.
      const spec = 'node:sqlite';
      const mod = (await withoutWarning(SQLITE_WARNING, () => import(spec))) as { DatabaseSync?: Ctor };
      if (typeof mod.DatabaseSync === 'function') return { ctor: mod.DatabaseSync, driver: 'node:sqlite' as const };
    } catch (err) {
      reasons.push(`node:sqlite: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      // createRequire with a variable name: the single-file bundle must not try to inline a native module.
      const load = createRequire(import.meta.url);
      const name = 'better-sqlite3';
      const ctor = load(name) as Ctor;
      return { ctor, driver: 'better-sqlite3' as const };
    } catch (err) {
      reasons.push(`better-sqlite3: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { error: `no SQLite driver (${reasons.join('; ')})` };
  })();
  return cached;
}

/** Opens (creating when absent) a database file; `readonly` opens an existing file without writing. */
export async function openSqlite(file: string, readonly = false): Promise<OpenedDb> {
  const found = await sqliteDriver();
  if ('error' in found) throw new NoSqliteDriver(found.error);
  const options = found.driver === 'node:sqlite' ? (readonly ? { readOnly: true } : {}) : readonly ? { readonly: true, fileMustExist: true } : {};
  return { db: new found.ctor(file, options), driver: found.driver };
}

/**
 * Runs `load` with Node's warnings whose message starts with `prefix` dropped; every other warning still goes out.
 */
export async function withoutWarning<T>(prefix: string, load: () => Promise<T>): Promise<T> {
  // Why: on Node 22 loading node:sqlite prints "ExperimentalWarning: SQLite is an experimental feature", which in
  // the proxy's log reads as a fault on every start. llmserve picks node:sqlite knowingly (better-sqlite3 is the
  // fallback), so that one line is noise. Node emits it through process.emitWarning while the module loads, so
  // the filter is in place only for the import.
  const emit = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const message = typeof warning === 'string' ? warning : warning.message;
    if (message.startsWith(prefix)) return;
    return (emit as (...args: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return await load();
  } finally {
    process.emitWarning = emit;
  }
}
