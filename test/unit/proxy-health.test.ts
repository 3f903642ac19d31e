// Readiness's backend check: a /health that does not answer in time is unhealthy, unless responses are flowing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBackendHealth } from '../../src/proxy/health.js';

/** A backend whose /health never answers (a saturated or hung vLLM); closed by the test. */
async function silentBackend(t: { after: (f: () => Promise<void> | void) => void }): Promise<string> {
  const server = http.createServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a /health past its deadline: healthy (busy) while the backend sent bytes within the window, else unhealthy', async (t) => {
  const url = await silentBackend(t);
  let since: number | null = 300;
  const asked: string[] = [];
  const health = createBackendHealth(url, () => performance.now(), (u) => (asked.push(u), since), 200, 0, 2000);
  assert.deepEqual(await health.check(), { ok: true, detail: 'busy: /health did not answer within 200 ms, but responses are flowing' });
  assert.deepEqual(asked, [url]);
  since = 5000;
  assert.deepEqual(await health.check(), { ok: false, detail: 'backend unreachable (no answer within 200 ms)' });
  since = null;
  assert.equal((await health.check()).ok, false, 'a backend that never sent anything');
});

test('an asynchronous heardFrom (a cluster worker asking every worker through the primary) is waited for', async (t) => {
  const url = await silentBackend(t);
  let answer: number | null = 100;
  const health = createBackendHealth(url, () => performance.now(), () => new Promise((resolve) => setTimeout(() => resolve(answer), 50)), 200, 0, 2000);
  assert.deepEqual(await health.check(), { ok: true, detail: 'busy: /health did not answer within 200 ms, but responses are flowing' });
  answer = null;
  assert.deepEqual(await health.check(), { ok: false, detail: 'backend unreachable (no answer within 200 ms)' });
});
