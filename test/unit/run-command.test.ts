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
  const result = await runCommand('/bin/sh', ['-c', script], { timeoutMs: 1000 });
  const took = Date.now() - started;
  assert.equal(result.timedOut, true, JSON.stringify(result));
  assert.equal(result.exitCode, null);
  assert.equal(result.notFound, false);
  // With execa's SIGTERM it would have lived on until the SIGKILL 5 s later.
  assert.ok(took < 4500, `returned ${took} ms after the start`);
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
