// /metrics with proxy.workers > 1: snapshots of each worker's series, gathered through the primary and summed
// (restarts and backend state: the largest, since every worker sees them alike).
import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { test } from 'node:test';
import { ProxyMetrics } from '../../src/metrics/proxy-metrics.js';
import { Counter, Histogram, Registry } from '../../src/metrics/registry.js';
import { metricsCollector, metricsGatherer, type MetricsGatherer, type WorkerMetricsMessage } from '../../src/proxy/worker-metrics.js';

/** No vLLM to read: these tests look at llmserve's own series. */
const NO_BACKENDS = { backends: [], several: false };

test('a registry absorbs another one: counters and histograms summed, max-merged series kept at the largest', () => {
  const make = () => {
    const r = new Registry();
    return { r, c: r.add(new Counter('c_total', 'C.', ['key'])), m: r.add(new Counter('m', 'M.', ['s'], 'gauge', 'max')), h: r.add(new Histogram('h_seconds', 'H.', [], [0.1, 1])) };
  };
  const a = make();
  const b = make();
  a.c.inc(2, 'alice');
  b.c.inc(3, 'alice');
  b.c.inc(1, 'bob');
  a.m.set(1, 'ready');
  b.m.set(1, 'ready');
  a.h.observe(0.05);
  b.h.observe(0.5);
  b.h.observe(5);
  const sum = make();
  sum.r.absorb(JSON.parse(JSON.stringify(a.r.snapshot())));
  sum.r.absorb(JSON.parse(JSON.stringify(b.r.snapshot())));
  assert.equal(sum.c.value('alice'), 5);
  assert.equal(sum.c.value('bob'), 1);
  assert.equal(sum.m.value('ready'), 1);
  assert.match(sum.r.render(), /h_seconds_bucket\{le="0.1"\} 1\nh_seconds_bucket\{le="1"\} 2\nh_seconds_bucket\{le="\+Inf"\} 3\nh_seconds_sum 5.55\nh_seconds_count 3/);
});

test('histogram sums add up alike whatever order the workers\' snapshots come in (no false counter reset)', () => {
  const worker = (...seconds: number[]) => {
    const r = new Registry();
    const h = r.add(new Histogram('h_seconds', 'H.', [], [1]));
    for (const s of seconds) h.observe(s);
    return JSON.parse(JSON.stringify(r.snapshot())) as ReturnType<Registry['snapshot']>;
  };
  const snapshots = [worker(0.1), worker(0.2), worker(0.3)];
  const sumIn = (order: number[]) => {
    const r = new Registry();
    r.add(new Histogram('h_seconds', 'H.', [], [1]));
    for (const i of order) r.absorb(snapshots[i]!);
    return /h_seconds_sum (\S+)/.exec(r.render())![1];
  };
  // In floating point 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last digit: one scrape would read lower.
  const sums = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1]].map(sumIn);
  assert.deepEqual(new Set(sums), new Set(['0.6']), sums.join(' '));
});

/**
 * Two workers and a primary wired like cluster IPC (each message delivered on a later turn); `delivered` sees each
 * worker's message once the primary has handled it.
 */
function cluster(answering: boolean[], collectorTimeoutMs = 1000, delivered: (i: number, m: WorkerMetricsMessage) => void = () => {}) {
  const metrics = answering.map(() => new ProxyMetrics('ready'));
  const gatherers: MetricsGatherer[] = [];
  const workers = answering.map((_, i) => ({
    isConnected: () => true,
    send: (m: WorkerMetricsMessage) => {
      // A worker that is stuck never answers the primary's request (read at each message: a test may stop one).
      if (answering[i] || m.type !== 'metrics-snapshot-request') setImmediate(() => gatherers[i]!.handle(m));
    },
  })) as unknown as Worker[];
  const live = [...workers];
  const collector = metricsCollector(() => live, collectorTimeoutMs);
  answering.forEach((_, i) => {
    const toPrimary = (m: WorkerMetricsMessage) => {
      collector.handle(workers[i]!, m);
      delivered(i, m);
    };
    gatherers.push(metricsGatherer((m) => setImmediate(toPrimary, m), () => metrics[i]!.snapshot(), () => metrics[i]!.unsummedNames()));
    metrics[i]!.gather = gatherers[i]!.gather;
  });
  /** Worker i is gone (exited, replaced): the primary no longer asks it, and retires what it counted. */
  const exit = (i: number, replaced = true) => {
    live.splice(live.indexOf(workers[i]!), 1);
    collector.retire(workers[i]!);
    if (replaced) collector.replaced();
  };
  return Object.assign(metrics, { exit });
}

test('a scrape on either worker shows the sum of both', async () => {
  const [a, b] = cluster([true, true]);
  a!.request('alice', 'm', 200, 12, 3);
  a!.request('alice', 'm', 200, 12, 3);
  b!.request('alice', 'm', 200, 12, 3);
  b!.request('bob', 'm', 429, 1, null);
  b!.setState('restarting');
  a!.setState('restarting');
  b!.setRestarts(1);
  a!.setRestarts(1);
  for (const m of [a!, b!]) {
    const page = await m.render(NO_BACKENDS);
    assert.match(page, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 3$/m);
    assert.match(page, /^llmserve_requests_total\{key="bob",model="m",status="429"\} 1$/m);
    assert.match(page, /^llmserve_request_duration_seconds_count\{key="alice",model="m"\} 3$/m);
    assert.match(page, /^llmserve_backend_state\{state="restarting"\} 1$/m);
    assert.match(page, /^llmserve_backend_state\{state="ready"\} 0$/m);
    assert.match(page, /^llmserve_backend_restarts_total 1$/m);
  }
});

test('a worker that does not answer is left out after the timeout, not waited for', async () => {
  const [a] = cluster([true, false], 100);
  a!.request('alice', 'm', 200, 12, 3);
  const page = await a!.render(NO_BACKENDS);
  assert.match(page, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 1$/m);
});

test('a worker that stops answering is counted with its last snapshot: its counters never drop (no false reset)', async () => {
  const answering = [true, true];
  const [a, b] = cluster(answering, 100);
  a!.request('alice', 'm', 200, 12, 3);
  b!.request('alice', 'm', 200, 12, 3);
  assert.match(await a!.render(NO_BACKENDS), /^llmserve_requests_total\{key="alice",model="m",status="200"\} 2$/m);
  answering[1] = false;
  a!.request('alice', 'm', 200, 12, 3);
  // b is stuck: its last answer (1 request) stands in, so the total grows from 2 to 3 instead of dropping to 2.
  assert.match(await a!.render(NO_BACKENDS), /^llmserve_requests_total\{key="alice",model="m",status="200"\} 3$/m);
});

test('a worker that is gone (replaced) stays counted with its last counters; its gauges (in flight, streams) go', async () => {
  const two = cluster([true, true]);
  const [a, b] = two;
  a!.request('alice', 'm', 200, 12, 3);
  b!.request('alice', 'm', 200, 12, 3);
  a!.inflight.set(1);
  b!.inflight.set(4);
  b!.streams.set(2);
  const before = await a!.render(NO_BACKENDS);
  assert.match(before, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 2$/m);
  assert.match(before, /^llmserve_requests_in_flight 5$/m);
  assert.match(before, /^llmserve_active_streams 2$/m);
  assert.match(before, /^llmserve_proxy_worker_replacements_total 0$/m);
  two.exit(1);
  a!.request('alice', 'm', 200, 12, 3);
  const after = await a!.render(NO_BACKENDS);
  // 2 before, plus a's new one: the gone worker's request is still counted, so the total never drops.
  assert.match(after, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 3$/m);
  assert.match(after, /^llmserve_request_duration_seconds_count\{key="alice",model="m"\} 3$/m);
  // Its requests in flight and streams went with it.
  assert.match(after, /^llmserve_requests_in_flight 1$/m);
  assert.match(after, /^llmserve_active_streams 0$/m);
  assert.match(after, /^llmserve_proxy_worker_replacements_total 1$/m);
});

test('several gone workers: their counters and histograms summed once, the restart count (alike in every worker) not multiplied', async () => {
  const three = cluster([true, true, true]);
  const [a, b, c] = three;
  for (const m of [a!, b!, c!]) {
    m.request('alice', 'm', 200, 12, 3);
    m.setRestarts(2);
  }
  c!.request('bob', 'm', 429, 1, null);
  b!.inflight.set(3);
  assert.match(await a!.render(NO_BACKENDS), /^llmserve_requests_total\{key="alice",model="m",status="200"\} 3$/m);
  three.exit(1);
  three.exit(2);
  a!.request('alice', 'm', 200, 12, 3);
  const page = await a!.render(NO_BACKENDS);
  assert.match(page, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 4$/m);
  assert.match(page, /^llmserve_requests_total\{key="bob",model="m",status="429"\} 1$/m);
  assert.match(page, /^llmserve_request_duration_seconds_count\{key="alice",model="m"\} 4$/m);
  assert.match(page, /^llmserve_backend_restarts_total 2$/m);
  assert.match(page, /^llmserve_requests_in_flight 0$/m);
  assert.match(page, /^llmserve_proxy_worker_replacements_total 2$/m);
});

test('a worker gone after it answered a scrape still under way is counted once in it, not twice (no false reset after)', async () => {
  const answering = [true, true, true];
  let exitAfterAnswer = false;
  const three = cluster(answering, 300, (i, m) => {
    // b answers the scrape, and is gone (SIGKILLed, replaced) while the scrape still waits for a stuck c.
    if (i === 1 && m.type === 'metrics-snapshot' && exitAfterAnswer) {
      exitAfterAnswer = false;
      three.exit(1);
    }
  });
  const [a, b, c] = three;
  for (const m of [a!, b!, c!]) m.request('alice', 'm', 200, 12, 3);
  const total = /^llmserve_requests_total\{key="alice",model="m",status="200"\} (\d+)$/m;
  assert.equal(total.exec(await a!.render(NO_BACKENDS))?.[1], '3');
  answering[2] = false;
  exitAfterAnswer = true;
  // Before, b's answer and b's retired counters were both in this scrape: 4, then 3 again on the next one.
  assert.equal(total.exec(await a!.render(NO_BACKENDS))?.[1], '3');
  assert.equal(exitAfterAnswer, false, 'b did not answer the second scrape');
  assert.equal(total.exec(await a!.render(NO_BACKENDS))?.[1], '3');
});
