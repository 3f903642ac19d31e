// Signals during start-up's planning: recorded once, the programs in flight aborted, a bounded wait for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { catchStartupSignals } from '../../src/util/startup-signals.js';

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
