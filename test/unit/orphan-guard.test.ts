// The orphan guard (src/supervisor/orphan-guard.ts) with its real shell, and real process groups standing in for vLLM.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnInGroup, spawnLineReader, type LineReader, type ManagedChild } from '../../src/supervisor/child.js';
import { startOrphanGuard, type OrphanGuard } from '../../src/supervisor/orphan-guard.js';
import { tempDir } from '../helpers/fixtures.js';
import { isAlive, listProcesses, processGroupMembers } from '../helpers/procs.js';
import { memoryLogger } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

/** A guard whose input the test can close as llmserve's death would (`die`), and whose every line it sees. */
async function guarded(graceMs: number, probeDir: string): Promise<{ guard: OrphanGuard; lines: string[]; die(): Promise<void>; pid(): number }> {
  const lines: string[] = [];
  let reader: LineReader | null = null;
  const { logger } = memoryLogger();
  const guard = await startOrphanGuard(graceMs, probeDir, process.env, logger, {
    pollMs: 20,
    startReader: async (...args) => {
      const real = await spawnLineReader(...args);
      reader = real;
      return { writeLine: (line) => (lines.push(line), real.writeLine(line)), end: (ms) => real.end(ms) };
    },
  });
  const guardPid = () => {
    const mine = listProcesses().find((p) => p.ppid === process.pid && p.state !== 'Z' && /llmserve-orphan-guard/.test(p.cmdline));
    assert.ok(mine, 'the guard runs');
    return mine.pid;
  };
  return { guard, lines, die: () => reader!.end(10_000), pid: guardPid };
}

/**
 * A process group standing in for vLLM: `script` run by sh as its leader, with one child of its own (the "engine");
 * whatever the test's outcome, the group is killed after it.
 */
async function fakeVllm(t: TestContext, guard: OrphanGuard, script: string): Promise<ManagedChild> {
  const child = await guard.wrap(spawnInGroup)({ file: '/bin/sh', args: ['-c', `sleep 30 & ${script}`], env: process.env, onLine: () => {} });
  t.after(() => void child.signalGroup('SIGKILL'));
  return child;
}

test('llmserve gone (the guard\'s input closes): probe files down, SIGTERM to each leader, then nothing of the groups is left', async (t) => {
  const dir = await tempDir();
  const { guard, lines, die } = await guarded(30_000, dir);
  // A leader that exits on SIGTERM, leaving its child (the engine) orphaned: the guard's group kill takes it too.
  const vllm = await fakeVllm(t, guard, 'trap "exit 0" TERM; while :; do sleep 0.05; done');
  await waitFor(() => processGroupMembers(vllm.pid).length === 3, { timeoutMs: 5000, message: 'the leader, its sleep and its engine' });
  assert.deepEqual(lines, [String(vllm.pid)]);
  const started = Date.now();
  await die();
  assert.ok(existsSync(path.join(dir, 'not-ready')) && existsSync(path.join(dir, 'not-healthy')), 'both probe files');
  assert.equal(isAlive(vllm.pid), false, 'the leader ended on its SIGTERM');
  // The leader went within the 30 s grace, so the group kill came at once, not after the grace.
  assert.ok(Date.now() - started < 10_000);
  await waitFor(() => processGroupMembers(vllm.pid).length === 0, { timeoutMs: 5000, message: 'the orphaned engine killed with the group' });
});

test('a leader that ignores SIGTERM: its group is SIGKILLed once the grace period is over, not before', async (t) => {
  const dir = await tempDir();
  const { guard, die } = await guarded(600, dir);
  const vllm = await fakeVllm(t, guard, 'trap "" TERM; while :; do sleep 0.05; done');
  const started = Date.now();
  await die();
  assert.ok(Date.now() - started >= 600, `the guard waited the grace period (${Date.now() - started} ms)`);
  await waitFor(() => processGroupMembers(vllm.pid).length === 0, { timeoutMs: 5000, message: 'the group SIGKILLed' });
});

test('an orderly release clears the list first: the guard exits and touches neither the groups nor the probe files', async (t) => {
  const dir = await tempDir();
  const { guard, lines, pid } = await guarded(30_000, dir);
  const vllm = await fakeVllm(t, guard, 'while :; do sleep 0.05; done');
  const guardPid = pid();
  await guard.release();
  assert.deepEqual(lines, [String(vllm.pid), '']);
  assert.equal(isAlive(guardPid), false, 'release waits for the guard to exit');
  assert.equal(isAlive(vllm.pid), true, 'the group is llmserve\'s to stop, not the guard\'s');
  assert.equal(existsSync(path.join(dir, 'not-healthy')), false);
});

test('a group is dropped from the list once empty, so that its id, if the kernel reuses it, is never signalled', async (t) => {
  const dir = await tempDir();
  const { guard, lines } = await guarded(30_000, dir);
  const first = await fakeVllm(t, guard, 'exec sleep 30');
  const second = await guard.wrap(spawnInGroup)({ file: '/bin/sh', args: ['-c', 'exit 0'], env: process.env, onLine: () => {} });
  await second.exited;
  // The orphan of the first group keeps it listed after its leader is gone.
  first.signal('SIGKILL');
  await first.exited;
  await waitFor(() => lines.at(-1) === String(first.pid) || lines.at(-1) === '', { timeoutMs: 5000, message: 'the empty group dropped' });
  assert.ok(lines.includes(`${first.pid} ${second.pid}`));
  assert.equal(lines.at(-1), String(first.pid), 'the first group still has its orphaned sleep');
  first.signalGroup('SIGKILL');
  await waitFor(() => lines.at(-1) === '', { timeoutMs: 5000, message: 'the first group dropped once empty' });
  await guard.release();
});

test('a probe directory removed while llmserve ran is made again for the probe files', async (t) => {
  const dir = path.join(await tempDir(), 'probe');
  const { guard, die } = await guarded(30_000, dir);
  const vllm = await fakeVllm(t, guard, 'exec sleep 30');
  // The directory does not exist (removed under a running llmserve, as `rm -rf` of a shared volume would).
  assert.equal(existsSync(dir), false);
  await die();
  assert.ok(existsSync(path.join(dir, 'not-ready')) && existsSync(path.join(dir, 'not-healthy')), 'both probe files');
  await waitFor(() => processGroupMembers(vllm.pid).length === 0, { timeoutMs: 5000, message: 'the group stopped' });
});

test('a probe file that exists, or a symlink planted at its name, is left as it is', async (t) => {
  const dir = await tempDir();
  const victim = path.join(await tempDir(), 'victim');
  writeFileSync(victim, 'keep\n');
  symlinkSync(victim, path.join(dir, 'not-healthy'));
  writeFileSync(path.join(dir, 'not-ready'), 'already\n');
  const { guard, die } = await guarded(30_000, dir);
  const vllm = await fakeVllm(t, guard, 'exec sleep 30');
  await die();
  assert.equal(readFileSync(victim, 'utf8'), 'keep\n', 'the symlink was not followed');
  assert.ok(lstatSync(path.join(dir, 'not-healthy')).isSymbolicLink());
  assert.equal(readFileSync(path.join(dir, 'not-ready'), 'utf8'), 'already\n');
  await waitFor(() => processGroupMembers(vllm.pid).length === 0, { timeoutMs: 5000, message: 'the group stopped' });
});

test('a FIFO at a probe file\'s name, or a symlink to one, is left as it is: the guard never blocks opening it', async (t) => {
  const dir = await tempDir();
  const fifo = path.join(await tempDir(), 'fifo');
  execFileSync('mkfifo', [fifo]);
  symlinkSync(fifo, path.join(dir, 'not-ready'));
  execFileSync('mkfifo', [path.join(dir, 'not-healthy')]);
  const { guard, die } = await guarded(30_000, dir);
  const vllm = await fakeVllm(t, guard, 'exec sleep 30');
  // Opening a FIFO for writing waits for a reader: a guard that opened one would never reach vLLM.
  await die();
  await waitFor(() => processGroupMembers(vllm.pid).length === 0, { timeoutMs: 5000, message: 'the group stopped' });
  assert.ok(lstatSync(path.join(dir, 'not-ready')).isSymbolicLink());
  assert.ok(lstatSync(path.join(dir, 'not-healthy')).isFIFO());
});

test('a guard that cannot start is a warning, and a guard that guards nothing', async () => {
  const { logger, lines } = memoryLogger();
  const guard = await startOrphanGuard(1000, '/nonexistent', process.env, logger, {
    startReader: () => Promise.reject(Object.assign(new Error('spawn /bin/sh ENOENT'), { code: 'ENOENT' })),
  });
  assert.match(lines.join('\n'), /cannot start the orphan guard \(\/bin\/sh: ENOENT\): if llmserve is SIGKILLed, vLLM keeps running/);
  const child = await guard.wrap(spawnInGroup)({ file: '/bin/sh', args: ['-c', 'exit 0'], env: process.env, onLine: () => {} });
  await child.exited;
  await guard.release();
});

test('the guard ignores SIGHUP and SIGINT (pkill -HUP -f llmserve), and one that exits anyway is started again with its groups', async (t) => {
  const dir = await tempDir();
  const { logger, lines: said } = memoryLogger();
  const lines: string[] = [];
  const guard = await startOrphanGuard(30_000, dir, process.env, logger, {
    pollMs: 20,
    startReader: async (...args) => {
      const real = await spawnLineReader(...args);
      return { writeLine: (line) => (lines.push(line), real.writeLine(line)), end: (ms) => real.end(ms), ...(real.exited ? { exited: real.exited } : {}) };
    },
  });
  t.after(() => guard.release());
  const vllm = await fakeVllm(t, guard, 'while :; do sleep 0.05; done');
  // This test's guard: its probe directory is on its command line (other tests' guards may still be ending).
  const guardPid = () => listProcesses().find((p) => p.ppid === process.pid && p.state !== 'Z' && /llmserve-orphan-guard/.test(p.cmdline) && p.cmdline.includes(dir))?.pid;
  const first = guardPid();
  assert.ok(first !== undefined, 'the guard runs');
  // The kernel's own record of what the process ignores (SigIgn: bit N-1 for signal N): SIGHUP 1, SIGINT 2.
  const ignored = BigInt('0x' + /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${first}/status`, 'utf8'))![1]);
  assert.equal(ignored & 3n, 3n, `SigIgn ${ignored.toString(16)}`);
  process.kill(first, 'SIGHUP');
  process.kill(first, 'SIGINT');
  // SIGKILL: it is started again, and told the groups at once.
  process.kill(first, 'SIGKILL');
  await waitFor(() => said.some((l) => /the orphan guard exited while llmserve runs \(a signal sent to it\?\): starting it again/.test(l)), { timeoutMs: 5000, message: 'the restart said' });
  await waitFor(() => guardPid() !== undefined && guardPid() !== first, { timeoutMs: 5000, message: 'a new guard' });
  await waitFor(() => lines.at(-1)?.split(' ').includes(String(vllm.pid)), { timeoutMs: 5000, message: 'the new guard told the groups' });
});
