// The usage store: SQLite through the one interface, batched writes, re-opening after a restart, a broken file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { memoryLogger } from '../helpers/upstream.js';
import { tempDir } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait.js';
import { memoryStore, openUsageStore, readUsageStore, reopenUsageStore, USAGE_DB_FILE } from '../../src/usage/store.js';
import { UsageRecorder } from '../../src/usage/recorder.js';
import { openSqlite, sqliteDriver, withoutWarning } from '../../src/usage/sqlite.js';

const HOUR = 3_600_000;
const T0 = 20_000 * HOUR + 5 * 60_000;

test('a SQLite driver is available here (node:sqlite or better-sqlite3)', async () => {
  const d = await sqliteDriver();
  assert.ok(!('error' in d), 'error' in d ? d.error : '');
});

test('withoutWarning drops only the warnings it names, and only while its load runs', async () => {
  const seen: string[] = [];
  const listener = (w: Error) => seen.push(w.message);
  process.on('warning', listener);
  const original = process.emitWarning;
  try {
    await withoutWarning('SQLite is an experimental feature', async () => {
      process.emitWarning('SQLite is an experimental feature and might change at any time', 'ExperimentalWarning');
      process.emitWarning(new Error('SQLite is an experimental feature (as an Error)'));
      process.emitWarning('another warning', 'Warning');
    });
    assert.equal(process.emitWarning, original, 'process.emitWarning is put back');
    process.emitWarning('SQLite is an experimental feature, after the load', 'ExperimentalWarning');
    // Node delivers warnings on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['another warning', 'SQLite is an experimental feature, after the load']);
  } finally {
    process.off('warning', listener);
  }
});

test('finding the driver gives no SQLite ExperimentalWarning (Node 22 gives one when node:sqlite loads)', async () => {
  // A fresh process: Node warns once per process, and this one may have loaded node:sqlite already.
  const sqliteModule = new URL('../../src/usage/sqlite.ts', import.meta.url).href;
  const script = `const seen = [];
process.on('warning', (w) => seen.push(w.name + ': ' + w.message));
const { sqliteDriver } = await import(${JSON.stringify(sqliteModule)});
const found = await sqliteDriver();
await new Promise((resolve) => setImmediate(resolve));
console.log(JSON.stringify({ driver: found.driver ?? found.error, seen }));`;
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  const result = JSON.parse(stdout) as { driver: string; seen: string[] };
  assert.match(result.driver, /^(node:sqlite|better-sqlite3)$/);
  assert.deepEqual(result.seen, [], `driver ${result.driver}`);
  assert.doesNotMatch(stderr, /ExperimentalWarning/);
});

test('batched writes survive closing and re-opening the store (a restart)', async () => {
  const dir = await tempDir();
  try {
    const { logger, lines } = memoryLogger();
    const store = await openUsageStore(dir, logger);
    assert.notEqual(store.kind, 'memory', lines.join('\n'));
    const clock = { t: T0 };
    const rec = new UsageRecorder({ store, logger, flushMs: 0, now: () => clock.t });
    rec.record('alice', 'm', false, 10, 5, false);
    rec.record('alice', 'm', true, 0, 0, false);
    clock.t += HOUR;
    rec.record('bob', 'm', false, 3, 4, true);
    assert.equal(store.rows().length, 0, 'nothing written before a flush');
    rec.close();

    const again = await openUsageStore(dir, logger);
    assert.deepEqual(again.rows(), [
      { hour: 20_000, key: 'alice', model: 'm', requests: 2, promptTokens: 10, completionTokens: 5, errors: 1, estimated: 0 },
      { hour: 20_001, key: 'bob', model: 'm', requests: 1, promptTokens: 3, completionTokens: 4, errors: 0, estimated: 1 },
    ]);
    assert.deepEqual(again.rows({ key: 'bob' }).length, 1);
    assert.deepEqual(again.rows({ sinceHour: 20_001 }).map((r) => r.key), ['bob']);
    assert.deepEqual([...again.totalsByKey()], [['alice', 15], ['bob', 7]]);
    // A second writer adds to the same rows.
    again.add([{ hour: 20_000, key: 'alice', model: 'm', requests: 1, promptTokens: 1, completionTokens: 1, errors: 0, estimated: 0 }]);
    again.close();
    const reader = await readUsageStore(dir);
    assert.equal(reader?.rows({ key: 'alice' })[0]?.requests, 3);
    reader?.close();
    assert.ok(!lines.some((l) => /WARN/i.test(l)), lines.join('\n'));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('totals, tokensByDay and tokensByKeyHour: the sums of the rows they select, from SQLite as from memory', async () => {
  // Hours across three UTC days, three keys, two models; the same deltas in a SQLite file and in memory.
  const deltas = [];
  for (let i = 0; i < 90; i++) {
    deltas.push({ hour: 20_000 + (i % 60), key: `k${i % 3}`, model: `m${i % 2}`, requests: 1 + (i % 4), promptTokens: 10 * i, completionTokens: i, errors: i % 5 === 0 ? 1 : 0, estimated: i % 7 === 0 ? 1 : 0 });
  }
  const dir = await tempDir();
  try {
    const { logger } = memoryLogger();
    const sqlite = await openUsageStore(dir, logger);
    assert.notEqual(sqlite.kind, 'memory');
    const memory = memoryStore();
    for (const store of [sqlite, memory]) store.add(deltas);
    const rows = memory.rows();
    const sum = (select: (r: (typeof rows)[number]) => boolean, id: (r: (typeof rows)[number]) => string, value: (r: (typeof rows)[number]) => number[]) => {
      const out = new Map<string, number[]>();
      for (const r of rows.filter(select)) out.set(id(r), (out.get(id(r)) ?? value(r).map(() => 0)).map((v, i) => v + value(r)[i]!));
      return [...out].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    };
    const tokens = (r: (typeof rows)[number]) => r.promptTokens + r.completionTokens;
    for (const store of [sqlite, memory]) {
      for (const filter of [{}, { sinceHour: 20_030 }, { key: 'k1' }, { sinceHour: 20_050, key: 'k2' }]) {
        const select = (r: (typeof rows)[number]) => r.hour >= (filter.sinceHour ?? 0) && (filter.key === undefined || r.key === filter.key);
        const totals = store.totals(filter).map((t) => [`${t.key}/${t.model}`, [t.requests, t.promptTokens, t.completionTokens, t.errors, t.estimated]]);
        assert.deepEqual(totals.sort((a, b) => (a[0]! < b[0]! ? -1 : 1)), sum(select, (r) => `${r.key}/${r.model}`, (r) => [r.requests, r.promptTokens, r.completionTokens, r.errors, r.estimated]), `${store.kind} totals ${JSON.stringify(filter)}`);
        const days = store.tokensByDay(filter).map((d) => [String(d.day), [d.tokens]]);
        assert.deepEqual(days, sum(select, (r) => String(Math.floor(r.hour / 24)), (r) => [tokens(r)]), `${store.kind} tokensByDay ${JSON.stringify(filter)}`);
      }
      // Budgets' reads: per key and hour from an hour on, and per key in total, for the keys named (none: nothing;
      // more than the SQL list takes: the same answer); names without rows are simply absent.
      const many = ['k1', ...Array.from({ length: 600 }, (_, i) => `absent-${i}`)];
      for (const keys of [null, ['k0', 'k2', 'nobody'], many, []]) {
        const got = store.tokensByKeyHour(20_040, keys).map((t) => [`${t.key}@${t.hour}`, [t.tokens]]);
        const select = (r: (typeof rows)[number]) => r.hour >= 20_040 && (keys === null || keys.includes(r.key));
        assert.deepEqual(got.sort((a, b) => (a[0]! < b[0]! ? -1 : 1)), sum(select, (r) => `${r.key}@${r.hour}`, (r) => [tokens(r)]), `${store.kind} tokensByKeyHour ${keys?.length ?? 'all'} keys`);
        const inTotal = [...store.totalsByKey(keys)].map(([key, n]) => [key, [n]]);
        assert.deepEqual(inTotal.sort((a, b) => (a[0]! < b[0]! ? -1 : 1)), sum((r) => keys === null || keys.includes(r.key), (r) => r.key, (r) => [tokens(r)]), `${store.kind} totalsByKey ${keys?.length ?? 'all'} keys`);
      }
    }
    assert.ok(sqlite.tokensByKeyHour(20_040, ['k0']).length > 0, 'the data reaches the hours asked for');
    sqlite.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a damaged store file is moved aside with a warning and a new one starts empty', async () => {
  const dir = await tempDir();
  try {
    writeFileSync(join(dir, USAGE_DB_FILE), 'this is not a database, it is garbage '.repeat(200));
    const { logger, lines } = memoryLogger();
    const store = await openUsageStore(dir, logger);
    assert.notEqual(store.kind, 'memory');
    assert.deepEqual(store.rows(), []);
    store.close();
    assert.ok(lines.some((l) => /damaged.*moved it to/.test(l)), lines.join('\n'));
    assert.ok(readdirSync(dir).some((f) => f.includes('.corrupt-')));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('an unusable directory: warn and count in memory', async () => {
  const dir = await tempDir();
  try {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const { logger, lines } = memoryLogger();
    const store = await openUsageStore(join(file, 'sub'), logger);
    assert.equal(store.kind, 'memory');
    assert.ok(lines.some((l) => /counting usage in memory only/.test(l)));
    // ...and says how to keep usage across restarts.
    assert.ok(lines.some((l) => /set usage\.dir or LLMSERVE_USAGE_DIR to a writable directory$/.test(l)), lines.join('\n'));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a store file removed while the proxy runs (a cleaner of usage.dir): said, a new one started there, the usage since the last write kept', async () => {
  const dir = await tempDir();
  try {
    const { logger, lines } = memoryLogger();
    const store = await openUsageStore(dir, logger);
    const rec = new UsageRecorder({ store, logger, flushMs: 0, now: () => T0, reopen: () => reopenUsageStore(dir, logger) });
    rec.record('alice', 'm', false, 10, 5, false);
    rec.flush();
    assert.equal(store.replaced?.(), false);
    for (const name of readdirSync(dir)) await fs.rm(join(dir, name));
    assert.equal(store.replaced?.(), true);
    rec.record('bob', 'm', false, 3, 4, false);
    rec.flush();
    // The new store opens asynchronously, and gets the rows counted meanwhile.
    rec.record('carol', 'm', false, 1, 1, false);
    await waitFor(() => rec.store !== store && rec.unflushed().length === 0, { timeoutMs: 5000, message: 'the new store to take the rows' });
    assert.match(lines.join('\n'), /usage store .*llmserve-usage\.db was removed or replaced while the proxy ran: the usage it held is gone with it; starting a new one there/);
    // Replaced by a damaged file (a partial copy, a bad restore of the three files): moved aside and a new one
    // started, as at start.
    writeFileSync(join(dir, USAGE_DB_FILE + '.tmp'), Buffer.alloc(8192, 7));
    await fs.rename(join(dir, USAGE_DB_FILE + '.tmp'), join(dir, USAGE_DB_FILE));
    for (const ext of ['-wal', '-shm']) await fs.rm(join(dir, USAGE_DB_FILE + ext), { force: true });
    const second = rec.store;
    rec.record('dave', 'm', false, 1, 1, false);
    rec.flush();
    await waitFor(() => rec.store !== second && rec.unflushed().length === 0, { timeoutMs: 5000, message: 'a new store after the damaged one' });
    assert.ok(readdirSync(dir).some((n) => /^llmserve-usage\.db\.corrupt-/.test(n)), readdirSync(dir).join(' '));
    assert.match(lines.join('\n'), /usage store .* is damaged \(file is not a database\); moved it to .*\.corrupt-.* and started an empty one/);
    rec.close();
    const reader = await readUsageStore(dir);
    assert.deepEqual(reader?.rows().map((r) => [r.key, r.requests]), [['dave', 1]]);
    reader?.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a reopen that fails (another proxy worker reopening the same file, its old -wal still held) is tried again at the next write; no row is lost', async () => {
  const { logger, lines } = memoryLogger();
  let replaced = false;
  const first = { ...memoryStore(), file: '/srv/usage/llmserve-usage.db', replaced: () => replaced };
  const second = memoryStore();
  let tries = 0;
  const reopen = async () => {
    tries++;
    if (tries === 1) throw new Error('disk I/O error');
    return second;
  };
  const rec = new UsageRecorder({ store: first, logger, flushMs: 0, now: () => T0, reopen });
  rec.record('a', 'm', false, 1, 1, false);
  replaced = true;
  rec.flush();
  await waitFor(() => lines.some((l) => /cannot open a new usage store at \/srv\/usage\/llmserve-usage\.db yet \(disk I\/O error\); keeping usage in memory and trying again/.test(l)), { timeoutMs: 2000, message: 'the failed reopen said' });
  rec.record('b', 'm', false, 1, 1, false);
  rec.flush();
  await waitFor(() => rec.store === second && rec.unflushed().length === 0, { timeoutMs: 2000, message: 'the second try to take the rows' });
  assert.deepEqual(second.rows().map((r) => r.key), ['a', 'b']);
  assert.equal(lines.filter((l) => /was removed or replaced/.test(l)).length, 1, lines.join('\n'));
  assert.ok(lines.some((l) => /usage store .* opened again/.test(l)), lines.join('\n'));
  rec.close();
});

test('a store that fails to write keeps the rows and retries, warning once', () => {
  const { logger, lines } = memoryLogger();
  const inner = memoryStore();
  let fail = true;
  const store = { ...inner, add: (d: Parameters<typeof inner.add>[0]) => (fail ? (() => { throw new Error('disk full'); })() : inner.add(d)) };
  const rec = new UsageRecorder({ store, logger, flushMs: 0, now: () => T0 });
  rec.record('a', 'm', false, 1, 1, false);
  rec.flush();
  rec.record('a', 'm', false, 1, 1, false);
  rec.flush();
  assert.equal(lines.filter((l) => /cannot write the usage store/.test(l)).length, 1);
  fail = false;
  rec.flush();
  assert.deepEqual(inner.rows().map((r) => [r.requests, r.promptTokens]), [[2, 2]]);
});

test('rows the last write at shutdown cannot store are said as lost, not left behind a "retrying" warning', () => {
  const { logger, lines } = memoryLogger();
  const inner = memoryStore();
  const store = { ...inner, add: () => { throw new Error('database or disk is full'); } };
  const rec = new UsageRecorder({ store, logger, flushMs: 0, now: () => T0 });
  rec.record('a', 'm', false, 1, 1, false);
  rec.record('a', 'm', false, 1, 1, false);
  rec.record('b', 'm', false, 1, 1, false);
  rec.close();
  assert.ok(lines.some((l) => /error: the usage store could not take the last 3 requests \(2 rows\) before the proxy stopped: they are not recorded/.test(l)), lines.join('\n'));
  // A close whose write works says nothing of the kind.
  const quiet = memoryLogger();
  const ok = new UsageRecorder({ store: memoryStore(), logger: quiet.logger, flushMs: 0, now: () => T0 });
  ok.record('a', 'm', false, 1, 1, false);
  ok.close();
  assert.deepEqual(quiet.lines.filter((l) => /not recorded/.test(l)), []);
});

test('a write that finds another process\'s lock fails at once while serving (rows kept), and waits at shutdown', async () => {
  const dir = await tempDir();
  const { logger, lines } = memoryLogger();
  const store = await openUsageStore(dir, logger);
  const recorder = new UsageRecorder({ store, logger, flushMs: 0, now: () => T0 });
  // Another connection (another process, as far as SQLite's locks go) holds the write lock.
  const other = await openSqlite(join(dir, USAGE_DB_FILE));
  other.db.exec('PRAGMA busy_timeout = 0');
  other.db.exec('BEGIN IMMEDIATE');
  try {
    recorder.record('alice', 'm', false, 1, 2, false);
    const started = performance.now();
    recorder.flush();
    const blockedMs = performance.now() - started;
    // Not the 2 s busy timeout: the proxy's event loop must not wait on another process.
    assert.ok(blockedMs < 1000, `the flush blocked ${Math.round(blockedMs)} ms`);
    assert.ok(lines.some((l) => /cannot write the usage store/.test(l)), lines.join('\n'));
    assert.equal(recorder.unflushed().length, 1, 'the rows are kept for the next try');
  } finally {
    other.db.exec('COMMIT');
    other.db.close();
  }
  recorder.close();
  const read = await readUsageStore(dir);
  assert.deepEqual(read?.rows().map((r) => [r.key, r.requests, r.completionTokens]), [['alice', 1, 2]]);
  read?.close();
});

test('a first open that finds the file locked by another process (two proxy workers opening a new store at once) tries again', async () => {
  const dir = await tempDir('llmserve-usage-');
  const file = join(dir, USAGE_DB_FILE);
  // Another connection holds the new file exclusively for a while, as the other worker does while it sets up WAL and
  // the table: the first try waits out its busy timeout and is refused with "database is locked".
  const { db: other } = await openSqlite(file);
  other.exec('BEGIN EXCLUSIVE');
  const release = setTimeout(() => other.exec('COMMIT'), 500);
  const { logger, lines } = memoryLogger();
  try {
    const store = await openUsageStore(dir, logger);
    assert.notEqual(store.kind, 'memory', lines.join('\n'));
    assert.deepEqual(lines, [], 'no "cannot be used" warning, no fallback to memory');
    store.close();
  } finally {
    clearTimeout(release);
    other.close();
  }
});

test('a store locked for good (an sqlite3 shell in a write transaction): memory after about two busy timeouts, not eight', async () => {
  const dir = await tempDir('llmserve-usage-');
  const { db: other } = await openSqlite(join(dir, USAGE_DB_FILE));
  other.exec('BEGIN EXCLUSIVE');
  const { logger, lines } = memoryLogger();
  const started = performance.now();
  try {
    const store = await openUsageStore(dir, logger);
    assert.equal(store.kind, 'memory');
    assert.match(lines.join('\n'), /cannot be used \(database is locked\)/);
  } finally {
    other.close();
  }
  const ms = performance.now() - started;
  // Two tries of a 2 s busy timeout, with room for a loaded machine; eight (the bug) would be 16 s.
  assert.ok(ms < 12_000, `the proxy's start waited ${Math.round(ms)} ms`);
});
