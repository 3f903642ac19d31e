// Per-key policy fields in proxy.keys, the keys file and proxy.master_limits; the typed `usage:` section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readKeysFile, type Config } from '../../src/config/index.js';
import { parseExpires } from '../../src/config/key-policy.js';
import { LlmserveError } from '../../src/errors.js';
import { CWD, load as loadFiles } from '../helpers/config.js';

const K1 = 'sk-live-0123456789abcdef0123456789';
const K2 = 'sk-live-abcdef0123456789abcdef0123';

/** Loads a config from in-memory files, with no flags. */
function load(files: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<Config> {
  return loadFiles(files, {}, env);
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LlmserveError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(K1) && !err.message.includes(K2));
    return true;
  });
}

test('every policy field is read; a key without one has no policy', async () => {
  const c = await load({
    'llmserve.yaml': `model: m
proxy:
  master_key: ${K1}
  keys:
    - name: team-a
      key: ${K2}
      models: [m, gpt-4o]
      rpm: 60
      tpm: 100000
      max_parallel: 4
      budget: { tokens: 1000000, period: 30d }
      expires: 2030-01-31
      disabled: false
    - name: plain
      key_sha256: ${'a'.repeat(64)}
`,
  });
  const team = c.proxy.keys.find((k) => k.name === 'team-a');
  assert.deepEqual(team?.policy, {
    models: ['m', 'gpt-4o'],
    rpm: 60,
    tpm: 100000,
    maxParallel: 4,
    budget: { tokens: 1000000, period: '30d' },
    expires: '2030-01-31T00:00:00.000Z',
  });
  assert.equal(c.proxy.keys.find((k) => k.name === 'plain')?.policy, undefined);
  assert.equal(c.proxy.keys.find((k) => k.name === 'master')?.policy, undefined, 'the master key is unlimited by default');
});

test('expires: a date-time without a zone is UTC, whatever the host\'s time zone; with one, its own', () => {
  const zone = process.env.TZ;
  try {
    for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
      process.env.TZ = tz;
      assert.equal(parseExpires('2026-12-31T18:00', 'x'), '2026-12-31T18:00:00.000Z', tz);
      assert.equal(parseExpires('2026-12-31 18:00:30', 'x'), '2026-12-31T18:00:30.000Z', tz);
      assert.equal(parseExpires('2026-12-31T18:00+02:00', 'x'), '2026-12-31T16:00:00.000Z', tz);
      assert.equal(parseExpires('2026-12-31', 'x'), '2026-12-31T00:00:00.000Z', tz);
    }
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
});

test('disabled: false is no policy: the key stays on the fast path and proxy.workers: 2 is allowed', async () => {
  const c = await load({ 'llmserve.yaml': `model: m\nproxy:\n  workers: 2\n  keys:\n    - { name: a, key: ${K1}, disabled: false }\n` });
  assert.equal(c.proxy.keys.find((k) => k.name === 'a')?.policy, undefined);
  const off = await load({ 'llmserve.yaml': `model: m\nproxy:\n  keys:\n    - { name: a, key: ${K1}, disabled: true }\n` });
  assert.deepEqual(off.proxy.keys.find((k) => k.name === 'a')?.policy, { disabled: true });
  const { entries: kf } = await readKeysFile('/k.yaml', { readFile: async () => `- name: bob\n  key: ${K2}\n  disabled: false\n`, env: {} });
  assert.equal(kf[0]?.policy, undefined);
});

test('models, expires and disabled limit no worker: auto stays at 2 processes and workers: 2 is allowed (only counted limits refuse it)', async () => {
  const keys = `  keys:\n    - { name: a, key: ${K1}, disabled: true }\n    - { name: b, key: ${K2}, expires: 2030-01-01, models: [m] }\n`;
  assert.equal((await load({ 'llmserve.yaml': `model: m\nproxy:\n  workers: 2\n${keys}` })).proxy.workers, 2);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  workers: 2\n${keys}    - { name: c, key: sk-c-0123456789abcdefgh, max_parallel: 2 }\n` }), /proxy\.workers: 2 cannot be used with per-key limits \(keys c\)/);
});

test('a keys file saved with a UTF-8 byte-order mark (some Windows editors) reads as without it', async () => {
  const { entries } = await readKeysFile('/k.yaml', { readFile: async () => `\uFEFF- name: bob\n  key: ${K2}\n`, env: {} });
  assert.deepEqual(entries.map((e) => e.name), ['bob']);
});

test('proxy.master_limits gives the master key a policy; metrics_port is read', async () => {
  const c = await load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  master_limits: { rpm: 10 }\n  metrics_port: 9100\n` });
  assert.deepEqual(c.proxy.keys.find((k) => k.name === 'master')?.policy, { rpm: 10 });
  assert.equal(c.proxy.metricsPort, 9100);
});

test('the keys file takes the same policy fields', async () => {
  const { entries: keys } = await readKeysFile('/k.yaml', { readFile: async () => `- name: bob\n  key: ${K2}\n  rpm: 2\n  budget: { tokens: 50 }\n`, env: {} });
  assert.deepEqual(keys[0]?.policy, { rpm: 2, budget: { tokens: 50, period: 'total' } });
});

test('bad policy values name the key path and what was expected', async () => {
  const entry = (extra: string) => ({ 'llmserve.yaml': `model: m\nproxy:\n  keys:\n    - name: a\n      key: ${K1}\n      ${extra}\n` });
  await rejects(load(entry('rpm: 0')), /proxy\.keys\[0\]\.rpm: expected a positive integer, got 0/);
  await rejects(load(entry('tpm: lots')), /proxy\.keys\[0\]\.tpm: expected a positive integer/);
  await rejects(load(entry('models: []')), /proxy\.keys\[0\]\.models: expected a non-empty list/);
  await rejects(load(entry('budget: { tokens: 10, period: 2d }')), /budget\.period: expected 1d, 7d, 30d or total, got "2d"/);
  await rejects(load(entry('budget: { tokens: 10, every: 1d }')), /budget\.every: unknown key/);
  await rejects(load(entry('expires: tomorrow')), /proxy\.keys\[0\]\.expires: expected an ISO date/);
  // A day that does not exist, which Date.parse would roll over into March.
  await rejects(load(entry('expires: 2026-02-30')), /proxy\.keys\[0\]\.expires: expected an ISO date.*2026-02-30/);
  // Days and months that do not parse at all were a RangeError with a stack trace (exit 1), not this error (exit 2).
  for (const day of ['2026-12-32', '2026-13-01', '2026-06-00', '2026-00-10T10:00:00Z']) {
    await rejects(load(entry(`expires: ${day}`)), new RegExp(`proxy\\.keys\\[0\\]\\.expires: expected an ISO date.*${day}`));
  }
  await rejects(load(entry('expires: 2026-02-31T12:00:00Z')), /proxy\.keys\[0\]\.expires: expected an ISO date/);
  await rejects(load(entry('disabled: maybe')), /proxy\.keys\[0\]\.disabled: expected true or false/);
  await rejects(load(entry('rpm_limit: 5')), /proxy\.keys\[0\]\.rpm_limit: unknown key; did you mean "rpm"/);
});

test('usage: dir (relative to the config file), track, flush_interval; defaults next to the config file', async () => {
  const c = await load({ 'llmserve.yaml': `model: m\nproxy: { master_key: ${K1} }\nusage: { dir: data, track: all, flush_interval: 0.5 }\n` });
  assert.deepEqual(c.usage, { dir: `${CWD}/data`, track: 'all', flushInterval: 0.5 });
  const d = await load({ '/etc/llm/llmserve.yaml': `model: m\nproxy: { master_key: ${K1} }\n` }, { LLMSERVE_CONFIG: '/etc/llm/llmserve.yaml' });
  assert.deepEqual(d.usage, { dir: '/etc/llm', track: 'limited', flushInterval: 5 });
  const e = await load({ 'llmserve.yaml': `model: m\nproxy: { master_key: ${K1} }\n` }, { LLMSERVE_USAGE_DIR: '/var/lib/u' });
  assert.equal(e.usage.dir, '/var/lib/u');
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy: { master_key: ${K1} }\nusage: { track: some }\n` }), /usage\.track: expected "limited" or "all"/);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy: { master_key: ${K1} }\nusage: { file: x }\n` }), /usage\.file: unknown key/);
});

test('proxy.workers: auto by default, min(2, CPUs), and 1 with key limits or usage.track: all', async () => {
  const on = async (cores: number, yaml: string) => (await loadFiles({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n${yaml}` }, {}, {}, cores)).proxy.workers;
  assert.equal(await on(8, ''), 2);
  assert.equal(await on(2, '  workers: auto\n'), 2);
  assert.equal(await on(1, ''), 1);
  assert.equal(await on(8, '  master_limits: { rpm: 10 }\n'), 1);
  assert.equal(await on(8, 'usage:\n  track: all\n'), 1);
  assert.equal(await on(8, '  workers: 1\n'), 1);
});

test('proxy.workers: a number above 1 is refused with key limits or usage.track: all, saying why', async () => {
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: many\n` }), /proxy\.workers: expected a positive integer or auto, got/);
  assert.equal((await load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: 4\n` })).proxy.workers, 4);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: 0\n` }), /proxy\.workers/);
  // Each worker is a forked process: a huge count is refused before anything forks (it was 1e+30 processes).
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: 1e30\n` }), /proxy\.workers: expected at most 256 processes, got 1e\+30; auto \(the default\)/);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: 257\n` }), /proxy\.workers: expected at most 256 processes, got 257/);
  assert.equal((await load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: 256\n` })).proxy.workers, 256);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  master_limits: { rpm: 10 }\n  workers: 2\n` }), /llmserve\.yaml: proxy\.workers: 2 cannot be used with per-key limits \(keys master\).*multiplied by 2/);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  master_key: ${K1}\n  workers: 2\nusage:\n  track: all\n` }), /llmserve\.yaml: proxy\.workers: 2 cannot be used with usage\.track: all/);
});
