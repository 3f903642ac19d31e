// runCommand (util/run.ts): a query that hangs past its timeout, ignoring SIGTERM as a program stuck in a driver
// call does, is SIGKILLed at the timeout and reported as timed out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../src/util/run.js';
import { isAlive } from '../helpers/procs.js';

test('runCommand: past its timeout a program that ignores SIGTERM is killed at once and reported as timed out', async () => {
  // The program prints its pid, ignores SIGTERM and waits. A shell, not Node: it must have printed its pid before the
  // timeout, and Node's own start took longer than 500 ms once on a loaded CI machine. An ignored signal stays ignored
  // across exec, and exec keeps the pid.
  const script = "trap '' TERM; echo $$; exec sleep 60";
  const started = Date.now();
  const result = await runCommand('/bin/sh', ['-c', script], { timeoutMs: 3000 });
  const took = Date.now() - started;
  assert.equal(result.timedOut, true, JSON.stringify(result));
  assert.equal(result.exitCode, null);
  assert.equal(result.notFound, false);
  // With execa's SIGTERM it would have lived on until the SIGKILL 5 s later (8 s after the start).
  assert.ok(took < 7000, `returned ${took} ms after the start`);
  const pid = Number(result.stdout.trim());
  assert.ok(pid > 0, `pid printed: ${JSON.stringify(result.stdout)}`);
  assert.equal(isAlive(pid), false, 'the program is gone');
});

test('runCommand: a program that ends in time is not timed out', async () => {
  const result = await runCommand(process.execPath, ['-e', 'process.exit(3)'], { timeoutMs: 10_000 });
  assert.deepEqual([result.exitCode, result.timedOut], [3, undefined]);
});

test('runCommand: a program that cannot be started for lack of file descriptors is reported (spawnError), not a crash', () => {
  const fixture = fileURLToPath(new URL('../fixtures/run-out-of-fds.mts', import.meta.url));
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" --import tsx "${fixture}"`], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { spawnError?: string; exitCode: number | null };
  assert.ok(result.spawnError === 'EMFILE' || result.spawnError === 'ENFILE', r.stdout);
  assert.equal(result.exitCode, null);
});

test('runCommand: a program that leaves a process holding its output (a wrapper without exec) is done when it exits, and its timeout holds', async (t) => {
  const left: number[] = [];
  t.after(() => {
    for (const pid of left) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  // It exits at once, leaving a sleep that holds stdout: done with its exit code and its output, not 30 s later.
  const started = Date.now();
  const quick = await runCommand('/bin/sh', ['-c', 'echo hi; sleep 30 & echo $!'], { timeoutMs: 10_000 });
  left.push(Number(quick.stdout.split('\n')[1]));
  assert.deepEqual([quick.exitCode, quick.stdout.split('\n')[0], quick.timedOut], [0, 'hi', undefined], JSON.stringify(quick));
  assert.ok(Date.now() - started < 5000, `returned ${Date.now() - started} ms after the start`);
  // A wrapper that waits on the real program: killed at its timeout, it leaves the program holding the pipes.
  const hung = await runCommand('/bin/sh', ['-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 500 });
  left.push(Number(hung.stdout.trim()));
  assert.equal(hung.timedOut, true, JSON.stringify(hung));
  assert.equal(hung.exitCode, null);
  assert.ok(Date.now() - started < 8000, `returned ${Date.now() - started} ms after the start`);
});
