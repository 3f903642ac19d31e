// Stopping a child's process group (src/supervisor/stop.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { emptyGroup } from '../../src/supervisor/stop.js';
import type { ManagedChild } from '../../src/supervisor/child.js';
import { withTimeout } from '../helpers/wait.js';

test('emptyGroup gives up on a process that survives SIGKILL after its timeout, on the monotonic clock: a wall clock stepped back meanwhile does not stretch it', async (t) => {
  // A group whose SIGKILL is never delivered (signalGroup does nothing): a vLLM worker stuck in the GPU driver.
  const stuck = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  const wallClock = Date.now;
  t.after(() => {
    Date.now = wallClock;
    process.kill(-stuck.pid!, 'SIGKILL');
  });
  const child = { pid: stuck.pid!, hasExited: true, exited: Promise.resolve({ code: null, signal: 'SIGKILL' }), signalGroup() {}, signal() {} } as unknown as ManagedChild;
  // NTP steps the clock back an hour while it waits.
  const step = setTimeout(() => (Date.now = () => wallClock() - 3_600_000), 50);
  t.after(() => clearTimeout(step));
  const left = await withTimeout(emptyGroup(child, 300), 10_000, 'emptyGroup to give up after its 300 ms');
  assert.deepEqual(left, [stuck.pid]);
});
