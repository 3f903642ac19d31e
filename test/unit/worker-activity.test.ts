// A worker's readiness asks every worker, through the primary, how recently a backend sent bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activityGatherer, type WorkerActivityMessage } from '../../src/proxy/worker-activity.js';

const URL_A = 'http://127.0.0.1:3000';

test('the primary\'s answer (every worker\'s least figure) is used; an unknown URL falls back to the worker\'s own', async () => {
  const sent: WorkerActivityMessage[] = [];
  const g = activityGatherer((m) => sent.push(m), () => ({ [URL_A]: 9000 }), 1000);
  const asked = g.ask(URL_A);
  assert.deepEqual(sent, [{ type: 'activity-gather', id: 1 }]);
  assert.equal(g.handle({ type: 'activity-gathered', id: 1, sinceMs: { [URL_A]: 40 } } as WorkerActivityMessage), true);
  assert.equal(await asked, 40);
  const other = g.ask('http://127.0.0.1:3001');
  g.handle({ type: 'activity-gathered', id: 2, sinceMs: { [URL_A]: 40 } } as WorkerActivityMessage);
  assert.equal(await other, null);
  assert.equal(g.handle({ type: 'metrics-gathered' }), false, 'other messages are left to their handlers');
});

test('a primary that does not answer in time: the worker\'s own figure, and a late answer is ignored', async () => {
  const g = activityGatherer(() => {}, () => ({ [URL_A]: 1500 }), 30);
  const started = performance.now();
  assert.equal(await g.ask(URL_A), 1500);
  assert.ok(performance.now() - started >= 25);
  assert.equal(g.handle({ type: 'activity-gathered', id: 1, sinceMs: { [URL_A]: 1 } } as WorkerActivityMessage), true);
});
