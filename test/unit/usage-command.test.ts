// `llmserve usage`: JSON rows, the table, the per-day chart, --key and --since, and an absent or broken store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { join } from 'node:path';
import { memoryLogger } from '../helpers/upstream.js';
import { tempDir } from '../helpers/fixtures.js';
import { runUsage, findUsageDir } from '../../src/commands/usage.js';
import { LlmserveError } from '../../src/errors.js';
import { openUsageStore, USAGE_DB_FILE } from '../../src/usage/store.js';
import { parseSince } from '../../src/usage/since.js';
import { summarise, toJson, toTable } from '../../src/usage/report.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 4, 10, 12, 30);
const H = Math.floor(NOW / HOUR);

async function withStore(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    const store = await openUsageStore(dir, memoryLogger().logger);
    store.add([
      { hour: H, key: 'alice', model: 'm', requests: 3, promptTokens: 30, completionTokens: 12, errors: 0, estimated: 0 },
      { hour: H - 1, key: 'alice', model: 'm', requests: 1, promptTokens: 10, completionTokens: 4, errors: 1, estimated: 0 },
      { hour: H - 30, key: 'bob', model: 'm', requests: 2, promptTokens: 5, completionTokens: 5, errors: 0, estimated: 2 },
      { hour: H - 24 * 20, key: 'old', model: 'm', requests: 9, promptTokens: 9, completionTokens: 9, errors: 0, estimated: 0 },
    ]);
    store.close();
    await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function run(dir: string, opts: Parameters<typeof runUsage>[0], chart = false): Promise<string> {
  let out = '';
  const code = await runUsage(opts, { env: { LLMSERVE_USAGE_DIR: dir }, cwd: dir, now: () => NOW, write: (t) => (out += t), chart });
  assert.equal(code, 0);
  return out;
}

test('--json: exactly {rows: [{key, model, requests, prompt_tokens, completion_tokens, errors}]}, keys by name', async () => {
  await withStore(async (dir) => {
    const doc = JSON.parse(await run(dir, { json: true }));
    assert.deepEqual(doc, {
      rows: [
        { key: 'alice', model: 'm', requests: 4, prompt_tokens: 40, completion_tokens: 16, errors: 1 },
        { key: 'bob', model: 'm', requests: 2, prompt_tokens: 5, completion_tokens: 5, errors: 0 },
      ],
    });
    assert.deepEqual(JSON.parse(await run(dir, { json: true, key: 'bob' })).rows.map((r: { key: string }) => r.key), ['bob']);
    assert.deepEqual(JSON.parse(await run(dir, { json: true, since: '2h' })).rows.map((r: { requests: number }) => r.requests), [4]);
    assert.equal(JSON.parse(await run(dir, { json: true, since: 'all' })).rows.length, 3);
  });
});

test('table with totals and the estimate mark; the chart on a terminal', async () => {
  await withStore(async (dir) => {
    const text = await run(dir, {}, true);
    assert.match(text, /KEY\s+MODEL\s+REQUESTS\s+PROMPT\s+COMPLETION\s+TOTAL\s+ERRORS/);
    assert.match(text, /alice\s+m\s+4\s+40\s+16\s+56\s+1/);
    assert.match(text, /bob\s+m\s+2\s+5\s+5\s+~10\s+0/);
    assert.match(text, /TOTAL\s+6\s+45\s+21\s+66\s+1/);
    assert.match(text, /estimated tokens/);
    assert.match(text, /Tokens per day \(UTC\)\n2026-05-09\s+█+ 10\n2026-05-10\s+█{40} 56/);
    assert.doesNotMatch(await run(dir, {}), /Tokens per day/, 'no chart when not on a terminal');
    // --since 2h at 12:30 selects the rows of 10:00 onwards (the store keeps hours): the heading says so.
    assert.match(await run(dir, { since: '2h' }), /^Usage since 2026-05-10 10:00 UTC /);
  });
});

test('key names with a space, a line break, an ESC or U+2028 are quoted in the table; --json gives them back as they are', () => {
  const rows = summarise(
    ['Team A', 'new\nline', 'esc\x1b[31m', 'ls\u2028sep', 'plain'].map((key) => ({ hour: H, key, model: 'm', requests: 1, promptTokens: 1, completionTokens: 1, errors: 0, estimated: 0 })),
  ).rows;
  const table = toTable(rows, new Map());
  const lines = table.split(/\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/).filter((l) => l !== '');
  assert.equal(lines.length, 1 + rows.length + 1, table);
  assert.doesNotMatch(table, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]/);
  for (const cell of ['"Team A"', '"new\\nline"', '"esc\\u001b[31m"', '"ls\\u2028sep"']) assert.ok(lines.some((l) => l.startsWith(cell + ' ')), `${cell} in\n${table}`);
  assert.ok(lines.some((l) => l.startsWith('plain ')));
  const json = toJson(rows);
  assert.doesNotMatch(json, /[\u2028\u2029]/);
  assert.deepEqual((JSON.parse(json) as { rows: { key: string }[] }).rows.map((r) => r.key), rows.map((r) => r.key));
});

test('no store yet: empty JSON and a one-line note; a store that cannot be read is exit 1, never "no usage"', async () => {
  const dir = await tempDir();
  try {
    assert.deepEqual(JSON.parse(await run(dir, { json: true })), { rows: [] });
    assert.match(await run(dir, {}), /No usage since .* \(no store yet\)/);
    writeFileSync(join(dir, USAGE_DB_FILE), 'garbage '.repeat(1000));
    // A billing script reading --json must not take an unreadable store for a period without usage.
    for (const json of [true, false]) {
      await assert.rejects(run(dir, { json }), (err: LlmserveError) => {
        assert.equal(err.code, 'USAGE_STORE');
        assert.equal(err.exitCode, 1);
        assert.match(err.message, new RegExp(`^cannot read the usage store ${join(dir, USAGE_DB_FILE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
        assert.match(err.details[0]!, /^Fix: run it as the user llmserve start runs as, or give this one read access to the file and write access to its directory \(SQLite opens the store's -wal and -shm files beside it, even to read\); a damaged store is moved aside/);
        return true;
      });
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('the usage directory: usage.dir of the config (relative to it), else next to it; env wins', async () => {
  const dir = await tempDir();
  try {
    await fs.writeFile(join(dir, 'llmserve.yaml'), 'model: m\nproxy: { master_key: os.environ/UNSET_HERE }\nusage: { dir: data }\n');
    assert.equal(await findUsageDir(join(dir, 'llmserve.yaml'), {}, '/'), join(dir, 'data'));
    await fs.writeFile(join(dir, 'other.yaml'), 'model: m\n');
    assert.equal(await findUsageDir(join(dir, 'other.yaml'), {}, '/'), dir);
    assert.equal(await findUsageDir(undefined, {}, dir), join(dir, 'data'), './llmserve.yaml found in the working directory');
    assert.equal(await findUsageDir(undefined, { LLMSERVE_USAGE_DIR: '/x' }, dir), '/x');
    await fs.writeFile(join(dir, 'ref.yaml'), 'model: m\nusage: { dir: os.environ/USAGE_HERE }\n');
    assert.equal(await findUsageDir(join(dir, 'ref.yaml'), { USAGE_HERE: 'from-env' }, '/'), join(dir, 'from-env'));
    // os.environ/ in any value of the section, as start reads it.
    await fs.writeFile(join(dir, 'refs.yaml'), 'model: m\nusage: { dir: data, track: os.environ/TRACK, flush_interval: os.environ/FLUSH }\n');
    assert.equal(await findUsageDir(join(dir, 'refs.yaml'), { TRACK: 'all', FLUSH: '2' }, '/'), join(dir, 'data'));
    // A LiteLLM config's `usage:` is ignored by start (its store is next to the file): so it is here.
    await fs.writeFile(join(dir, 'litellm.yaml'), 'model_list:\n  - model_name: m\ngeneral_settings: { master_key: os.environ/UNSET_HERE }\nusage: { dir: /elsewhere }\n');
    assert.equal(await findUsageDir(join(dir, 'litellm.yaml'), {}, '/'), dir);
    // The section is checked as start checks it: a misspelt or mistyped key is exit 2, never another store's empty report.
    for (const [section, pattern] of [
      ['{ dri: data }', /usage\.dri: unknown key; did you mean "dir"\?$/],
      ['{ dir: 5 }', /usage\.dir: expected a directory path, got 5/],
      ['{ track: everything }', /usage\.track: expected "limited" or "all"/],
    ] as const) {
      await fs.writeFile(join(dir, 'bad.yaml'), `model: m\nusage: ${section}\n`);
      await assert.rejects(findUsageDir(join(dir, 'bad.yaml'), {}, '/'), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && pattern.test(err.message));
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a ./llmserve.yaml that cannot be read is an error naming it, never "no config" and another store and its empty report', async () => {
  // A directory stands in for a file this user may not read (mode 600, another owner), which root could read anyway.
  const dir = await tempDir();
  try {
    await fs.mkdir(join(dir, 'llmserve.yaml'));
    await assert.rejects(findUsageDir(undefined, {}, dir), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && /cannot read config file .*llmserve\.yaml: EISDIR/.test(err.message));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('--since values', () => {
  assert.equal(parseSince('7d', NOW), NOW - 7 * 24 * HOUR);
  assert.equal(parseSince('24h', NOW), NOW - 24 * HOUR);
  assert.equal(parseSince('2026-05-01', NOW), Date.UTC(2026, 4, 1));
  assert.equal(parseSince('all', NOW), null);
  assert.throws(() => parseSince('yesterday', NOW), /--since: expected/);
  // A span reaching before 1970 is everything, not an invalid date (it crashed the table before).
  assert.equal(parseSince('999999999w', NOW), null);
  // A day that does not exist is refused, not rolled over into the next month.
  assert.throws(() => parseSince('2026-02-30', NOW), /--since: expected/);
  assert.equal(parseSince('2024-02-29', NOW), Date.UTC(2024, 1, 29));
});

test('--since: only strict dates and date-times, checked against the calendar; a date-time without a zone is UTC', () => {
  // Date.parse read these as June, May 11th and March 2nd.
  for (const junk of ['2026-11-28junk', '2026-05-011', '2026-02-30T00:00:00Z', '2026-05-01T24:00', '2026-05-01T10:60Z', '2026-05-01T10:00+25:00', '2026-13-01', '2026-05-01T10']) {
    assert.throws(() => parseSince(junk, NOW), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && /^--since: expected .*YYYY-MM-DD\[THH:MM/.test(err.message), junk);
  }
  assert.throws(() => parseSince('2026-5-1', NOW), /--since: expected a span/);
  assert.equal(parseSince('2026-11-28T05:30', NOW), Date.UTC(2026, 10, 28, 5, 30), 'UTC, as the heading says, not the host zone');
  assert.equal(parseSince('2026-11-28 05:30:15', NOW), Date.UTC(2026, 10, 28, 5, 30, 15));
  assert.equal(parseSince('2026-11-28T05:30:15.250Z', NOW), Date.UTC(2026, 10, 28, 5, 30, 15, 250));
  assert.equal(parseSince('2026-11-28T05:30+02:00', NOW), Date.UTC(2026, 10, 28, 3, 30));
  assert.equal(parseSince('2026-11-28T05:30-0130', NOW), Date.UTC(2026, 10, 28, 7, 0));
  assert.equal(parseSince('2024-02-29T23:59:59z', NOW), Date.UTC(2024, 1, 29, 23, 59, 59));
});
