// Signals during start-up's planning: recorded once, the programs in flight aborted, a bounded wait for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runWorker } from '../../src/commands/worker.js';
import { loadConfig } from '../../src/config/index.js';
import { catchStartupSignals } from '../../src/util/startup-signals.js';
import { tempDir } from '../helpers/fixtures.js';
import { memoryLogger } from '../helpers/upstream.js';

test('catchStartupSignals: the first of SIGTERM/SIGINT wins, SIGHUP is ignored, settled() waits the grace after it', async () => {
  const proc = new EventEmitter() as unknown as NodeJS.Process;
  const seen: string[] = [];
  const early = catchStartupSignals(proc, (name) => seen.push(name));
  let settled = false;
  const wait = early.settled(50).then(() => (settled = true));
  proc.emit('SIGHUP');
  assert.equal(early.received, null);
  assert.equal(early.abort.aborted, false);
  // Nothing settles without a signal (no timer is even started): a full turn of the event loop changes nothing.
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false);
  const at = performance.now();
  proc.emit('SIGINT');
  proc.emit('SIGTERM');
  assert.deepEqual(seen, ['SIGINT']);
  assert.equal(early.received, 'SIGINT');
  assert.equal(early.abort.aborted, true);
  await wait;
  assert.ok(performance.now() - at >= 45, 'settled only after the grace period');
  // After a signal, a later settled() counts its grace from now.
  await early.settled(1);
  early.dispose();
  assert.equal((proc as unknown as EventEmitter).listenerCount('SIGTERM'), 0);
  assert.equal((proc as unknown as EventEmitter).listenerCount('SIGHUP'), 0);
});

test('a SIGTERM while start\'s modules load (recorded by bin/early-signals.js) is taken over: start stops at once', () => {
  const require = createRequire(import.meta.url);
  const { recordEarlySignals } = require('../../bin/early-signals.js') as { recordEarlySignals(proc: NodeJS.Process): void };
  const proc = new EventEmitter() as unknown as NodeJS.Process;
  const count = (name: string) => (proc as unknown as EventEmitter).listenerCount(name);
  recordEarlySignals(proc);
  // As PID 1 a signal without a handler is dropped: from the first line of bin/llmserve.js there is one.
  assert.deepEqual([count('SIGTERM'), count('SIGINT'), count('SIGHUP')], [1, 1, 1]);
  proc.emit('SIGHUP');
  proc.emit('SIGTERM');
  proc.emit('SIGINT');
  const seen: string[] = [];
  const early = catchStartupSignals(proc, (name) => seen.push(name));
  assert.equal(early.received, 'SIGTERM');
  assert.equal(early.abort.aborted, true);
  assert.deepEqual(seen, ['SIGTERM']);
  // The recording handlers are gone: start's own are the only ones, and a later signal is not counted twice.
  assert.deepEqual([count('SIGTERM'), count('SIGINT'), count('SIGHUP')], [1, 1, 1]);
  early.dispose();
  assert.deepEqual([count('SIGTERM'), count('SIGINT'), count('SIGHUP')], [0, 0, 0]);
  // Nothing recorded: nothing received, and the recording handlers are removed all the same.
  recordEarlySignals(proc);
  const quiet = catchStartupSignals(proc, () => assert.fail('no signal came'));
  assert.equal(quiet.received, null);
  quiet.dispose();
  assert.equal(count('SIGTERM'), 0);
});

test('--role worker: a signal before the worker\'s own handlers stops it with both probe files, exit 0, nothing started', async () => {
  const proc = Object.assign(new EventEmitter(), { env: process.env, pid: process.pid }) as unknown as NodeJS.Process;
  const early = catchStartupSignals(proc, () => {});
  const probeDir = path.join(await tempDir(), 'probe');
  const config = await loadConfig({ role: 'worker', head: '10.0.0.1:6379', probeDir }, { env: {}, cwd: '/' });
  const { logger, lines } = memoryLogger();
  const running = runWorker(config, logger, proc, early);
  // While the probe directory is being made: start-up's handler takes it, the worker sees it before starting Ray.
  proc.emit('SIGTERM');
  assert.equal(await running, 0);
  assert.ok(existsSync(path.join(probeDir, 'not-ready')) && existsSync(path.join(probeDir, 'not-healthy')), 'both probe files');
  assert.ok(lines.some((l) => /SIGTERM received during start-up: stopping before anything is started/.test(l)), lines.join('\n'));
  assert.ok(!lines.some((l) => /ray/i.test(l)), 'Ray was started');
  assert.equal((proc as unknown as EventEmitter).listenerCount('SIGTERM'), 0, 'no handler left behind');
});
