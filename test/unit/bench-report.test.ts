// The bench's verdicts (bench/report.mjs): each target judged on its own figure, errors failing what they touch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, type BenchTarget } from '../../bench/report.mjs';

/** A run whose figures meet every target, in the shape bench/run.mjs writes. */
function passingRun(): Record<string, any> {
  const stream = (p50: number, p99: number) => ({ eventDelayP50Ms: p50, eventDelayP99Ms: p99, openingP99Ms: p99 + 2, closingP99Ms: p99 + 3, afterRampP50Ms: p50, afterRampP99Ms: p99 + 1, errors: 0, peakRssMB: 300 });
  return {
    saturation: { direct: { rps: 50_000, errors: 0 }, llmserve: { rps: 14_000, errors: 0 }, 'http-proxy': { rps: 10_000, errors: 0 }, nginx: { rps: 25_000, errors: 0 } },
    latency500: { direct: { p50Ms: 0.25, p99Ms: 1.4, errors: 0 }, llmserve: { p50Ms: 0.6, p99Ms: 2.3, errors: 0 }, 'http-proxy': { p50Ms: 0.6, p99Ms: 3, errors: 0 }, nginx: { p50Ms: 0.4, p99Ms: 1.1, errors: 0 } },
    streams1000: { direct: stream(0.02, 1.5), llmserve: stream(1.2, 9), 'http-proxy': stream(10, 100), nginx: stream(1.0, 8) },
    streams5000: { direct: stream(0.05, 3), llmserve: stream(1, 15), nginx: stream(0.6, 10) },
    abort: { llmserve: { maxMs: 2, errors: 0 } },
    supervisor: { readyToNotReadyRemovedMs: 100, deathToNotHealthyMs: 300, sigtermToAllGoneMs: 50 },
    memory: { growth: 0.04, requestErrors: 0, streamErrors: 0 },
  };
}

const verdict = (r: Record<string, any>, name: RegExp): BenchTarget => {
  const found = (r.targets as BenchTarget[]).find((t) => name.test(t.name));
  assert.ok(found, `no target matching ${name}`);
  return found;
};

test('bench verdicts: a clean run passes every target; errors fail the targets whose figures they are in', () => {
  const clean = passingRun();
  evaluate(clean);
  assert.deepEqual((clean.targets as BenchTarget[]).filter((t) => t.pass === false).map((t) => t.name), []);
  // autocannon's rate counts a fast 401 or 502 as an answer: a throughput made of errors is no throughput.
  const failing = passingRun();
  failing.saturation.llmserve.errors = 12;
  evaluate(failing);
  assert.equal(verdict(failing, /0\.25x direct/).pass, false);
  assert.equal(verdict(failing, /0\.9x bare/).pass, false);
  const slow = passingRun();
  slow.latency500.llmserve.errors = 1;
  evaluate(slow);
  assert.equal(verdict(slow, /500 req\/s/).pass, false);
  const leak = passingRun();
  leak.memory.streamErrors = 3;
  evaluate(leak);
  assert.equal(verdict(leak, /RSS growth/).pass, false);
});

test('bench verdicts: the 1,000-stream p99 is judged while all the streams are open; the runs 1-68 window is said beside it, not judged', () => {
  const r = passingRun();
  // All open: 9 - 1.5 = 7.5 added, nginx's 6.5 + 5 allowed. Over the old window: 16.5 - 2.5 = 14 against 6.5 + 5.
  r.streams1000.llmserve.afterRampP99Ms = 16.5;
  evaluate(r);
  assert.equal(verdict(r, /all open\): added p99/).pass, true);
  const beside = verdict(r, /runs 1-68 window/);
  assert.deepEqual([beside.pass, beside.holds, beside.value], [null, false, 14]);
  r.streams1000.llmserve.eventDelayP99Ms = 14;
  evaluate(r);
  assert.equal(verdict(r, /all open\): added p99/).pass, false);
});
