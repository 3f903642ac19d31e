// Faults in sequence, as the randomized soak (scripts/soak.mjs) found them: each case here replays one that broke an
// invariant, made deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findByMarker, isAlive } from '../helpers/procs.js';
import { startService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const FAST_RESTART = 'restart: { backoff_initial: 0.1, backoff_max: 0.2 }\n';

test('a wedged vLLM being stopped for a restart gets no new requests: the proxy answers 503 + Retry-After at once, not after the stop timeout', async (t) => {
  // One proxy process, so that its `backend state` line is the state every connection gets.
  // A 20 s stop timeout: the request below, however late a loaded machine sends it, comes while the old vLLM is still
  // being stopped, and one sent into it would wait far longer than the 10 s allowed.
  const svc = await startService({ config: FAST_RESTART + 'proxy:\n  workers: 1\n', healthInterval: '0.2', stopTimeout: '20' });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  const api = svc.vllmStarts()[0]!.pid;
  // Wedged: nothing answered, and the SIGTERM of the stop stays pending, so the stop lasts the whole stop timeout.
  process.kill(api, 'SIGSTOP');
  t.after(() => void (isAlive(api) && process.kill(api, 'SIGCONT')));
  await svc.run.waitForLine(/vLLM failed 3 health checks in a row: stopping it to restart it/, 30_000);
  // The proxy is told before the stop, not once the old vLLM is gone 20 s later.
  await svc.run.waitForLine(/backend state: ready -> restarting/, 10_000);
  assert.ok(isAlive(api), 'the old vLLM is still being stopped');
  const started = Date.now();
  const res = await svc.chat();
  const body = await res.text();
  assert.equal(res.status, 503, body);
  assert.ok(res.headers.get('retry-after'), 'a 503 with Retry-After, not a request sent into the vLLM being stopped');
  assert.match(body, /restarting/);
  // Within the 20 s stop: a request sent into the stopped vLLM would wait for the SIGKILL.
  assert.ok(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`);
  await waitFor(() => svc.vllmStarts().length === 2, { timeoutMs: 60_000, message: 'a restarted vLLM' });
  await waitFor(async () => (await svc.chat()).status === 200, { timeoutMs: 60_000, message: 'the new vLLM serving' });
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});
