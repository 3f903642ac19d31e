// The usage store: one SQLite file (llmserve-usage.db) with a row per hour, key and model. Losing or breaking
// the file is a warning: llmserve moves a broken file aside and starts empty, or keeps counting in memory.
import { existsSync, renameSync, statSync } from 'node:fs';
import { makeDirs } from '../util/make-dirs.js';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { NO_DRIVER_FIX, NoSqliteDriver, openSqlite, type SqlDb, type SqlStatement } from './sqlite.js';
import { addCounts, type KeyHourTokens, type UsageFilter, type UsageRow, type UsageStore, type UsageTotal } from './types.js';

/** The database file name inside the usage directory. */
export const USAGE_DB_FILE = 'llmserve-usage.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage (
  hour INTEGER NOT NULL,
  key TEXT NOT NULL,
  model TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  estimated INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, key, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_key_hour ON usage (key, hour);
`;

const UPSERT = `
INSERT INTO usage (hour, key, model, requests, prompt_tokens, completion_tokens, errors, estimated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (hour, key, model) DO UPDATE SET
  requests = requests + excluded.requests,
  prompt_tokens = prompt_tokens + excluded.prompt_tokens,
  completion_tokens = completion_tokens + excluded.completion_tokens,
  errors = errors + excluded.errors,
  estimated = estimated + excluded.estimated`;

type Raw = { hour: number; key: string; model: string; requests: number; prompt_tokens: number; completion_tokens: number; errors: number; estimated: number };

/** A row's counts from SQLite's columns (numbers or bigints, by driver), without its hour. */
const rawTotal = (r: Omit<Raw, 'hour'>): UsageTotal => ({
  key: r.key,
  model: r.model,
  requests: Number(r.requests),
  promptTokens: Number(r.prompt_tokens),
  completionTokens: Number(r.completion_tokens),
  errors: Number(r.errors),
  estimated: Number(r.estimated),
});

const toRow = (r: Raw): UsageRow => ({ hour: Number(r.hour), ...rawTotal(r) });

/** A row's counts without its hour. */
const withoutHour = ({ hour: _hour, ...total }: UsageRow): UsageTotal => total;

/** The WHERE clause (with its leading space) and parameters that select `filter`'s rows. */
function whereOf(filter: UsageFilter): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.sinceHour !== undefined) {
    where.push('hour >= ?');
    params.push(filter.sinceHour);
  }
  if (filter.key !== undefined) {
    where.push('key = ?');
    params.push(filter.key);
  }
  return { sql: where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '', params };
}

/**
 * Up to this many keys are named in the query (`key IN (...)`, which the (key, hour) index serves); more, and every
 * key's rows are summed and the others dropped here: one pass over the table instead of a lookup per key.
 */
const KEY_LIST_MAX = 500;

/** How a query reads only `keys` (null: every key): a `key IN (...)` condition, or a set to keep afterwards. */
function keyList(keys: readonly string[] | null): { condition: string | null; params: readonly string[]; keep: ReadonlySet<string> | null } {
  if (keys === null) return { condition: null, params: [], keep: null };
  if (keys.length > KEY_LIST_MAX) return { condition: null, params: [], keep: new Set(keys) };
  return { condition: `key IN (${keys.map(() => '?').join(', ')})`, params: keys, keep: null };
}

/** A store over an open SQLite database. */
function sqliteStore(db: SqlDb, kind: 'node:sqlite' | 'better-sqlite3', file: string): UsageStore {
  const upsert: SqlStatement = db.prepare(UPSERT);
  // The file opened, by device and inode: SQLite goes on writing to an open file that was removed, without an error.
  const opened = statSync(file);
  return {
    kind,
    file,
    replaced() {
      try {
        const now = statSync(file);
        return now.ino !== opened.ino || now.dev !== opened.dev;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ENOENT';
      }
    },
    add(deltas) {
      if (deltas.length === 0) return;
      db.exec('BEGIN');
      try {
        for (const d of deltas) upsert.run(d.hour, d.key, d.model, d.requests, d.promptTokens, d.completionTokens, d.errors, d.estimated);
        db.exec('COMMIT');
      } catch (err) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // the transaction may already be gone
        }
        throw err;
      }
    },
    rows(filter = {}) {
      const where = whereOf(filter);
      return (db.prepare(`SELECT * FROM usage${where.sql} ORDER BY hour, key, model`).all(...where.params) as Raw[]).map(toRow);
    },
    totals(filter = {}) {
      const where = whereOf(filter);
      const sql = `SELECT key, model, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
        SUM(errors) AS errors, SUM(estimated) AS estimated FROM usage${where.sql} GROUP BY key, model`;
      return (db.prepare(sql).all(...where.params) as Omit<Raw, 'hour'>[]).map(rawTotal);
    },
    tokensByDay(filter = {}) {
      const where = whereOf(filter);
      const sql = `SELECT hour / 24 AS day, SUM(prompt_tokens + completion_tokens) AS tokens FROM usage${where.sql} GROUP BY day ORDER BY day`;
      return (db.prepare(sql).all(...where.params) as { day: number; tokens: number }[]).map((r) => ({ day: Number(r.day), tokens: Number(r.tokens) }));
    },
    tokensByKeyHour(sinceHour, keys) {
      if (keys !== null && keys.length === 0) return [];
      const { condition, params, keep } = keyList(keys);
      const sql = `SELECT key, hour, SUM(prompt_tokens + completion_tokens) AS tokens FROM usage WHERE hour >= ?${condition ? ` AND ${condition}` : ''} GROUP BY key, hour`;
      const rows = (db.prepare(sql).all(sinceHour, ...params) as KeyHourTokens[]).map((r) => ({ key: r.key, hour: Number(r.hour), tokens: Number(r.tokens) }));
      return keep === null ? rows : rows.filter((r) => keep.has(r.key));
    },
    totalsByKey(keys = null) {
      const out = new Map<string, number>();
      if (keys !== null && keys.length === 0) return out;
      const { condition, params, keep } = keyList(keys);
      const sql = `SELECT key, SUM(prompt_tokens + completion_tokens) AS tokens FROM usage${condition ? ` WHERE ${condition}` : ''} GROUP BY key`;
      for (const r of db.prepare(sql).all(...params) as { key: string; tokens: number }[]) {
        if (keep === null || keep.has(r.key)) out.set(r.key, Number(r.tokens));
      }
      return out;
    },
    patient() {
      db.exec(`PRAGMA busy_timeout = ${SHUTDOWN_BUSY_MS}`);
    },
    close() {
      db.close();
    },
  };
}

/** How long a write may wait for another process's lock: while serving (writes run on the proxy's event loop) and at shutdown. */
const SERVING_BUSY_MS = 20;
const SHUTDOWN_BUSY_MS = 2000;

/** A store in memory: the fallback when no file can be used, and a test double. */
export function memoryStore(): UsageStore {
  const rows = new Map<string, UsageRow>();
  const select = (filter: UsageFilter): UsageRow[] =>
    [...rows.values()].filter((r) => (filter.sinceHour === undefined || r.hour >= filter.sinceHour) && (filter.key === undefined || r.key === filter.key));
  return {
    kind: 'memory',
    file: null,
    add(deltas) {
      for (const d of deltas) {
        const id = `${d.hour}\u0000${d.key}\u0000${d.model}`;
        const r = rows.get(id);
        if (r === undefined) rows.set(id, { ...d });
        else addCounts(r, d);
      }
    },
    rows(filter = {}) {
      return select(filter)
        .map((r) => ({ ...r }))
        .sort((a, b) => a.hour - b.hour || a.key.localeCompare(b.key) || a.model.localeCompare(b.model));
    },
    totals(filter = {}) {
      const by = new Map<string, UsageTotal>();
      for (const r of select(filter)) {
        const id = `${r.key}\u0000${r.model}`;
        const total = by.get(id);
        if (total === undefined) by.set(id, withoutHour(r));
        else addCounts(total, r);
      }
      return [...by.values()];
    },
    tokensByDay(filter = {}) {
      const days = new Map<number, number>();
      for (const r of select(filter)) {
        const day = Math.floor(r.hour / 24);
        days.set(day, (days.get(day) ?? 0) + r.promptTokens + r.completionTokens);
      }
      return [...days].sort((a, b) => a[0] - b[0]).map(([day, tokens]) => ({ day, tokens }));
    },
    tokensByKeyHour(sinceHour, keys) {
      const wanted = keys === null ? null : new Set(keys);
      const by = new Map<string, KeyHourTokens>();
      for (const r of select({ sinceHour })) {
        if (wanted !== null && !wanted.has(r.key)) continue;
        const id = `${r.key}\u0000${r.hour}`;
        const seen = by.get(id);
        if (seen === undefined) by.set(id, { key: r.key, hour: r.hour, tokens: r.promptTokens + r.completionTokens });
        else seen.tokens += r.promptTokens + r.completionTokens;
      }
      return [...by.values()];
    },
    totalsByKey(keys = null) {
      const wanted = keys === null ? null : new Set(keys);
      const out = new Map<string, number>();
      for (const r of rows.values()) if (wanted === null || wanted.has(r.key)) out.set(r.key, (out.get(r.key) ?? 0) + r.promptTokens + r.completionTokens);
      return out;
    },
    close() {},
  };
}

/**
 * Opens the database file and makes sure its table is readable; throws on a broken file. `openBusyMs`: how long the
 * opening statements may wait for another process's lock (the shutdown allowance at start, the serving one after).
 */
async function openChecked(file: string, openBusyMs = SHUTDOWN_BUSY_MS): Promise<UsageStore> {
  const { db, driver } = await openSqlite(file);
  try {
    db.exec(`PRAGMA busy_timeout = ${openBusyMs}`);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(SCHEMA);
    db.prepare('SELECT COUNT(*) AS n FROM usage').all();
    // Why so short once serving: writes block the proxy's event loop, and with another process holding the lock
    // (a second llmserve on a shared directory, an sqlite3 shell) every byte to every client would wait. A write
    // that finds the lock taken fails at once; the recorder keeps its rows and tries again at the next flush.
    db.exec(`PRAGMA busy_timeout = ${SERVING_BUSY_MS}`);
    return sqliteStore(db, driver, file);
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Tries of the first open that another process's lock may refuse, the pause between them (ms, jittered), and how long
 * tries may go on: a lock held for good (an sqlite3 shell in a write transaction) costs the proxy's start about two
 * busy timeouts, not eight. A second try always comes: on a loaded machine the first, waiting out its busy timeout,
 * could take the whole allowance by itself.
 */
const OPEN_TRIES = 8;
const OPEN_PAUSE_MS = 40;
const OPEN_RETRY_FOR_MS = 2500;

/**
 * openChecked, tried again while the file is locked. Why: `proxy.workers: 2` opens the store from two processes at
 * the same instant, and on a new file both switch it to WAL and create the table together; SQLite then refuses one
 * of them at once with "database is locked" (a lock it cannot wait for without a deadlock: busy_timeout does not
 * apply), and that worker counted usage in memory only, its share never stored.
 */
async function openRetryingLocked(file: string): Promise<UsageStore> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await openChecked(file);
    } catch (err) {
      const locked = /database is locked|SQLITE_BUSY/i.test((err as Error).message);
      if (!locked || attempt >= OPEN_TRIES || (attempt >= 2 && Date.now() - started > OPEN_RETRY_FOR_MS)) throw err;
      await new Promise((resolve) => setTimeout(resolve, OPEN_PAUSE_MS * (0.5 + Math.random())));
    }
  }
}

/** A message of SQLite's for a file that is no database, or a damaged one. */
const isDamaged = (err: unknown): boolean => /not a database|malformed|corrupt/i.test((err as Error).message);

/** Moves a damaged store file (and its -wal, -shm) aside as `.corrupt-TIME`; returns the new name. */
function moveAside(file: string): string {
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(file, aside);
  for (const ext of ['-wal', '-shm']) {
    try {
      renameSync(file + ext, aside + ext);
    } catch {
      // absent
    }
  }
  return aside;
}

/**
 * Opens the store file in `dir` again while serving (its file was removed or replaced), or throws, to be tried again
 * at the next write. One try, each statement waiting at most the serving allowance: it runs on the proxy's event loop,
 * and a lock held for long (an sqlite3 shell) must not stall every client for seconds at each try. A damaged file is
 * moved aside and a new one started, as at start.
 */
export async function reopenUsageStore(dir: string, logger: Logger): Promise<UsageStore> {
  const file = join(dir, USAGE_DB_FILE);
  makeDirs(dir);
  try {
    return await openChecked(file, SERVING_BUSY_MS);
  } catch (err) {
    if (!isDamaged(err)) throw err;
    const aside = moveAside(file);
    logger.warn(`usage store ${file} is damaged (${(err as Error).message}); moved it to ${aside} and started an empty one`);
    return openChecked(file, SERVING_BUSY_MS);
  }
}

/**
 * Opens the usage store in `dir` for writing. A broken file is moved aside (`.corrupt-TIME`) and a new one
 * started; when no file can be used at all (no driver, unwritable directory), usage is kept in memory. Both warn.
 */
export async function openUsageStore(dir: string, logger: Logger): Promise<UsageStore> {
  const file = join(dir, USAGE_DB_FILE);
  try {
    makeDirs(dir);
    return await openRetryingLocked(file);
  } catch (err) {
    const message = (err as Error).message;
    if (isDamaged(err)) {
      try {
        const aside = moveAside(file);
        logger.warn(`usage store ${file} is damaged (${message}); moved it to ${aside} and started an empty one`);
        return await openChecked(file);
      } catch (again) {
        logger.warn(`usage store ${file} is damaged and could not be replaced (${(again as Error).message}); counting usage in memory only`);
        return memoryStore();
      }
    }
    const keep = err instanceof NoSqliteDriver ? NO_DRIVER_FIX.replace(/^Fix: /, '') : 'set usage.dir or LLMSERVE_USAGE_DIR to a writable directory';
    logger.warn(
      `usage store ${file} cannot be used (${message}); counting usage in memory only (limits still hold, budgets restart at 0 after a restart); to keep usage, ${keep}`,
    );
    return memoryStore();
  }
}

/** Opens an existing store read-only (the `usage` command); null when there is no file yet. */
export async function readUsageStore(dir: string): Promise<UsageStore | null> {
  const file = join(dir, USAGE_DB_FILE);
  if (!existsSync(file)) return null;
  // Read-write open: a WAL database needs its -shm file even to read; nothing is written by this command.
  const { db, driver } = await openSqlite(file);
  try {
    db.exec('PRAGMA busy_timeout = 2000');
    db.exec(SCHEMA);
    return sqliteStore(db, driver, file);
  } catch (err) {
    db.close();
    throw err;
  }
}
