// The reliability settings (restart, drain, stall_timeout), the port-holder lookup and the --shutdown-timeout choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/fixtures.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { LlmserveError } from '../../src/errors.js';
import { describePortHolder, findPortHolder, listeningInodes, otherListeners, readListeningSection } from '../../src/supervisor/port-holder.js';
import { setsShutdownTimeout, shutdownTimeoutFor, withShutdownTimeout } from '../../src/supervisor/shutdown-timeout.js';

const F = '/srv/app/llmserve.yaml';
const KEY_ENV = { LLMSERVE_MASTER_KEY: 'sk-live-0123456789abcdef0123456789' };

/** Loads an in-memory llmserve.yaml. */
function file(text: string, env: NodeJS.ProcessEnv = KEY_ENV): Promise<Config> {
  return loadConfig({}, {
    env,
    cwd: '/srv/app',
    readFile: async (p) => {
      if (p === F) return text;
      throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    },
    exists: async (p) => p === F,
  });
}

/** Asserts a one-line exit-2 error that starts with the file and the key path. */
async function rejects(p: Promise<unknown>, message: string): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof LlmserveError, `expected an LlmserveError, got ${String(err)}`);
  assert.equal(err.exitCode, 2);
  assert.equal(err.message, `${F}: ${message}`);
  assert.ok(!err.message.includes('\n'));
}

test('restart: the short form, the mapping with fractional seconds, and the defaults', async () => {
  assert.deepEqual((await file('model: m\nrestart: never\n')).restart, { policy: 'never', maxFailures: 5, windowS: 600, backoffInitialS: 1, backoffMaxS: 60, resetAfterS: 300 });
  assert.equal((await file('model: m\nrestart: on-failure\n')).restart.policy, 'on-failure');
  const c = await file('model: m\nrestart: { max_failures: 2, window: 30, backoff_initial: 0.1, backoff_max: 0.4, reset_after: 1.5 }\n');
  assert.deepEqual(c.restart, { policy: 'on-failure', maxFailures: 2, windowS: 30, backoffInitialS: 0.1, backoffMaxS: 0.4, resetAfterS: 1.5 });
  assert.equal((await file('model: m\nrestart: { policy: never }\n')).restart.policy, 'never');
  assert.equal((await file('model: m\nrestart: os.environ/POLICY\n', { ...KEY_ENV, POLICY: 'never' })).restart.policy, 'never');
});

test('drain and stall_timeout: fractions, 0 allowed for the drain, os.environ/ read', async () => {
  const c = await file('model: m\ndrain: { delay: 0.5, timeout: 0 }\nstall_timeout: 0.75\n');
  assert.deepEqual(c.drain, { delay: 0.5, timeout: 0 });
  assert.equal(c.timeouts.stall, 0.75);
  assert.deepEqual((await file('model: m\ndrain: { timeout: 90 }\n')).drain, { delay: 0, timeout: 90 });
});

test('bad reliability settings: one line naming the file and the key path (exit 2)', async () => {
  await rejects(file('model: m\nrestart: always\n'), 'restart: expected "on-failure" or "never" (or a mapping with policy, max_failures, window, backoff_initial, backoff_max, reset_after), got "always"');
  await rejects(file('model: m\nrestart: [never]\n'), 'restart: expected "on-failure" or "never" (or a mapping with policy, max_failures, window, backoff_initial, backoff_max, reset_after), got a list');
  await rejects(file('model: m\nrestart: { policy: sometimes }\n'), 'restart.policy: expected "on-failure" or "never" (or a mapping with policy, max_failures, window, backoff_initial, backoff_max, reset_after), got "sometimes"');
  await rejects(file('model: m\nrestart: { max_failures: 0 }\n'), 'restart.max_failures: expected a positive integer, got 0');
  await rejects(file('model: m\nrestart: { max_failures: 2.5 }\n'), 'restart.max_failures: expected a positive integer, got 2.5');
  await rejects(file('model: m\nrestart: { backoff_initial: fast }\n'), 'restart.backoff_initial: expected a positive number of seconds, got "fast"');
  await rejects(file('model: m\nrestart: { backoff_initial: 10, backoff_max: 5 }\n'), 'restart.backoff_max: expected at least backoff_initial (10), got 5');
  await rejects(file('model: m\nrestart: { max_failure: 3 }\n'), 'restart.max_failure: unknown key; did you mean "max_failures"?');
  await rejects(file('model: m\ndrain: 30\n'), 'drain: expected a mapping, got a number');
  await rejects(file('model: m\ndrain: { delay: -1 }\n'), 'drain.delay: expected a number of seconds, 0 or more, got -1');
  await rejects(file('model: m\ndrain: { timout: 5 }\n'), 'drain.timout: unknown key; did you mean "timeout"?');
  await rejects(file('model: m\nstall_timeout: 0\n'), 'stall_timeout: expected a positive number of seconds, got 0');
  await rejects(file('model: m\nstall_timout: 5\n'), 'stall_timout: unknown key; did you mean "stall_timeout"?');
});

test('--shutdown-timeout: below the stop timeout, added once, never over the user\'s own', () => {
  assert.equal(shutdownTimeoutFor(30), 25);
  assert.equal(shutdownTimeoutFor(10), 5);
  assert.equal(shutdownTimeoutFor(4), 2);
  assert.equal(shutdownTimeoutFor(2.5), 1);
  assert.equal(shutdownTimeoutFor(1.5), null);
  for (const stop of [2, 3, 7.5, 10, 30, 600]) assert.ok(shutdownTimeoutFor(stop)! < stop);
  assert.deepEqual(withShutdownTimeout(['vllm', 'serve', 'm'], 30), { argv: ['vllm', 'serve', 'm', '--shutdown-timeout=25'], added: true });
  assert.deepEqual(withShutdownTimeout(['vllm', 'serve', 'm', '--shutdown_timeout', '3'], 30), { argv: ['vllm', 'serve', 'm', '--shutdown_timeout', '3'], added: false });
  assert.deepEqual(withShutdownTimeout(['vllm', 'serve', 'm'], 1), { argv: ['vllm', 'serve', 'm'], added: false });
  assert.equal(setsShutdownTimeout(['--shutdown-timeout=0']), true);
  // vLLM's argparse reads an abbreviation as the flag: `--shutdown 60` is the user's own drain, not to be overridden.
  assert.equal(setsShutdownTimeout(['--shutdown', '60']), true);
  assert.deepEqual(withShutdownTimeout(['vllm', 'serve', 'm', '--shutdown_time=60'], 30), { argv: ['vllm', 'serve', 'm', '--shutdown_time=60'], added: false });
  assert.equal(setsShutdownTimeout(['--', '--seed', '1', '--shutdown-timeouts']), false);
});

test('port holder: /proc/net/tcp parsing (LISTEN only, any address, v4 and v6 layouts)', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0',
    '   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 100 0 0 10 0',
    '   2: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 30 10 -1',
    '   3: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1',
  ].join('\n');
  assert.deepEqual(listeningInodes(table, 3000), ['111']);
  assert.deepEqual(listeningInodes(table, 8080), ['222', '444']);
  assert.deepEqual(listeningInodes(table, 9), []);
  assert.equal(describePortHolder(null), null);
  assert.equal(describePortHolder({ pid: 7, command: 'python -m http.server' }), 'pid 7 (python -m http.server)');
});

test('other listeners: a listener on the port that none of our processes holds is found, with its process', async () => {
  // A /proc of two processes listening on port 3000 (vLLM's SO_REUSEPORT lets both bind): ours (10) and another (20).
  const root = await tempDir();
  mkdirSync(path.join(root, 'net'));
  writeFileSync(path.join(root, 'net', 'tcp'), [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0',
    '   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0',
  ].join('\n'));
  for (const [pid, inode, cmd] of [['10', '111', 'vllm serve /m'], ['20', '555', 'vllm serve /other']] as const) {
    mkdirSync(path.join(root, pid, 'fd'), { recursive: true });
    symlinkSync(`socket:[${inode}]`, path.join(root, pid, 'fd', '3'));
    writeFileSync(path.join(root, pid, 'cmdline'), cmd.replace(/ /g, '\0'));
  }
  assert.deepEqual(otherListeners(3000, [10], root), { count: 1, holder: { pid: 20, command: 'vllm serve /other' } });
  assert.deepEqual(otherListeners(3000, [10, 20], root), { count: 0, holder: null });
  // None of ours listens yet (still loading) while another does: the other one answered.
  assert.deepEqual(otherListeners(3000, [99], root), { count: 2, holder: { pid: 10, command: 'vllm serve /m' } });
  // No listener seen at all (not Linux, /proc unreadable): no verdict.
  assert.equal(otherListeners(3000, [10], path.join(root, 'missing')), null);
  assert.equal(otherListeners(4000, [10], root), null);
});

test('port holder: finds the real process listening on a port, null for a free one', async (t) => {
  const holder = spawn(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>console.log(s.address().port))", 'port-holder-test'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => holder.kill('SIGKILL'));
  const [chunk] = (await once(holder.stdout!, 'data')) as [Buffer];
  const port = Number(chunk.toString().trim());
  const found = findPortHolder(port);
  assert.equal(found?.pid, holder.pid);
  assert.match(found?.command ?? '', /node -e const s=require/);
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  assert.equal(findPortHolder(port), null);
});

test('port holder: only the listening head of a big table is read (Linux lists listeners first)', async () => {
  const root = await tempDir();
  mkdirSync(path.join(root, 'net'));
  const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  const listen = (sl: number, port: string, inode: number) => `${String(sl).padStart(4)}: 0100007F:${port} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0`;
  // A busy namespace: two listeners, then 100,000 TIME_WAIT entries (state 06), each several 64 KiB reads long.
  const timeWait = (sl: number) => `${String(sl).padStart(4)}: 0100007F:1F90 0100007F:${(sl % 60000 + 1024).toString(16).toUpperCase().padStart(4, '0')} 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000`;
  const lines = [header, listen(0, '0BB8', 111), listen(1, '1F90', 222)];
  for (let i = 2; i < 100_002; i++) lines.push(timeWait(i));
  // Never reached: a LISTEN line after the connections is not where Linux puts one.
  lines.push(listen(100_002, '0BB8', 999));
  writeFileSync(path.join(root, 'net', 'tcp'), lines.join('\n') + '\n');
  const head = readListeningSection(path.join(root, 'net', 'tcp'));
  assert.equal(head, lines.slice(0, 3).join('\n') + '\n');
  mkdirSync(path.join(root, '10', 'fd'), { recursive: true });
  symlinkSync('socket:[111]', path.join(root, '10', 'fd', '3'));
  assert.deepEqual(otherListeners(3000, [10], root), { count: 0, holder: null });
  // A header split across reads, a table with no listener, an empty one.
  writeFileSync(path.join(root, 'net', 'tcp'), header.repeat(2000).replace(/$/, '\n') + timeWait(0) + '\n');
  assert.equal(readListeningSection(path.join(root, 'net', 'tcp')), header.repeat(2000) + '\n');
  writeFileSync(path.join(root, 'net', 'tcp'), '');
  assert.equal(readListeningSection(path.join(root, 'net', 'tcp')), '');
});

test('port holder: a listener opened after many connections is still in the head this kernel lists first', async (t) => {
  // The early stop relies on the kernel's order; this checks it on the machine that runs the tests.
  const first = net.createServer((s) => s.resume()).listen(0, '127.0.0.1');
  await once(first, 'listening');
  const clients = await Promise.all(Array.from({ length: 200 }, async () => {
    const c = net.connect((first.address() as net.AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    return c;
  }));
  const later = net.createServer().listen(0, '127.0.0.1');
  await once(later, 'listening');
  t.after(() => {
    for (const c of clients) c.destroy();
    first.close();
    later.close();
  });
  const found = findPortHolder((later.address() as net.AddressInfo).port);
  assert.equal(found?.pid, process.pid);
  // And the read stopped before the 400 connection sockets (both ends of each) that the whole table lists.
  const headLines = readListeningSection('/proc/net/tcp').split('\n').length;
  const allLines = readFileSync('/proc/net/tcp', 'utf8').split('\n').length;
  assert.ok(allLines - headLines >= 400, `head ${headLines} lines, whole table ${allLines}`);
});
