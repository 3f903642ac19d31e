// The engine-stall watchdog's logic (src/supervisor/engine-stall.ts): vLLM's figures read from /metrics, and the
// verdict sample by sample; the restart itself is tested end to end against the fake vLLM (test/e2e).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineStallWatch, engineFigures } from '../../src/supervisor/engine-stall.js';

// A page as vLLM's prometheus_client writes it (abridged): two engines (data parallel), a histogram, a label with a space.
const page = (gen: number, running = 2, kv = 0.25) =>
  [
    '# HELP python_gc_objects_collected_total Objects collected during gc',
    '# TYPE python_gc_objects_collected_total counter',
    'python_gc_objects_collected_total{generation="0"} 1234.0',
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running{engine="0",model_name="org/My Model"} ${running}.0`,
    'vllm:num_requests_running{engine="1",model_name="org/My Model"} 1.0',
    `vllm:kv_cache_usage_perc{engine="0",model_name="org/My Model"} ${kv}`,
    '# TYPE vllm:generation_tokens counter',
    `vllm:generation_tokens_total{engine="0",model_name="org/My Model"} ${gen}.0`,
    `vllm:generation_tokens_total{engine="1",model_name="org/My Model"} 10.0`,
    'vllm:generation_tokens_created{engine="0",model_name="org/My Model"} 1.7e+09',
    'vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="org/My Model"} 3.0',
    '',
  ].join('\n');

describe('engineFigures', () => {
  it('sums each engine series over its labels and ignores every other series', () => {
    assert.equal(engineFigures(page(90)), 'vllm:generation_tokens_total=100 vllm:num_requests_running=3 vllm:kv_cache_usage_perc=0.25');
    assert.notEqual(engineFigures(page(91)), engineFigures(page(90)), 'a token more');
    assert.notEqual(engineFigures(page(90, 2, 0.26)), engineFigures(page(90)), 'KV cache taken by a prefill chunk');
    assert.equal(engineFigures(page(90).replace('1234.0', '9999.0')), engineFigures(page(90)), 'the Python collector moves on its own');
  });

  it('is null without a token counter: vLLM with --disable-log-stats, or not vLLM', () => {
    assert.equal(engineFigures('# HELP python_info x\npython_info{version="3.12"} 1.0\nvllm:num_requests_running 0\n'), null);
    assert.equal(engineFigures(''), null);
    assert.equal(engineFigures('<html>Not Found</html>'), null);
  });

  it('ignores a last line cut off mid-value, and reads a value followed by a timestamp', () => {
    const cut = 'vllm:prompt_tokens_total{engine="0"} 5.0\nvllm:generation_tokens_total{engine="0"} 12';
    assert.equal(engineFigures(cut), 'vllm:prompt_tokens_total=5');
    assert.equal(engineFigures('vllm:generation_tokens_total 7 1700000000000\n'), 'vllm:generation_tokens_total=7');
  });
});

describe('EngineStallWatch', () => {
  const T = 30_000;
  const frozen = 'vllm:generation_tokens_total=100';

  it('stalls once requests have waited the timeout with no byte and no figure moving, counted from when they were seen', () => {
    const w = new EngineStallWatch(T);
    assert.equal(w.sample({ now: 0, waiting: 0, sinceBytesMs: null, figures: null }), null);
    assert.equal(w.sample({ now: 10_000, waiting: 2, sinceBytesMs: 9_000, figures: frozen }), null, 'the spell starts here');
    assert.equal(w.sample({ now: 20_000, waiting: 2, sinceBytesMs: 19_000, figures: frozen }), null);
    assert.equal(w.sample({ now: 30_000, waiting: 3, sinceBytesMs: 29_000, figures: frozen }), null, '20 s quiet');
    assert.equal(w.sample({ now: 40_000, waiting: 3, sinceBytesMs: 39_000, figures: frozen }), 30_000);
  });

  it('any sign of progress starts the count again: bytes since the sample before, figures that moved, or nothing waiting', () => {
    const w = new EngineStallWatch(T);
    w.sample({ now: 0, waiting: 1, sinceBytesMs: null, figures: frozen });
    assert.equal(w.sample({ now: 25_000, waiting: 1, sinceBytesMs: 3_000, figures: frozen }), null, 'a byte 3 s ago');
    assert.equal(w.sample({ now: 50_000, waiting: 1, sinceBytesMs: 28_000, figures: frozen }), null, 'quiet for 25 s only');
    assert.equal(w.sample({ now: 60_000, waiting: 1, sinceBytesMs: 38_000, figures: 'vllm:generation_tokens_total=101' }), null, 'a token');
    assert.equal(w.sample({ now: 85_000, waiting: 1, sinceBytesMs: 63_000, figures: 'vllm:generation_tokens_total=101' }), null);
    assert.equal(w.sample({ now: 86_000, waiting: 0, sinceBytesMs: 64_000, figures: null }), null, 'nothing waits');
    assert.equal(w.sample({ now: 90_000, waiting: 1, sinceBytesMs: 68_000, figures: 'vllm:generation_tokens_total=101' }), null);
    assert.equal(w.sample({ now: 115_000, waiting: 1, sinceBytesMs: 93_000, figures: 'vllm:generation_tokens_total=101' }), null, '25 s since nothing waited');
    assert.equal(w.sample({ now: 120_000, waiting: 1, sinceBytesMs: 98_000, figures: 'vllm:generation_tokens_total=101' }), 30_000);
  });

  it('never stalls on what it cannot see: figures unreadable, or the proxy not answering', () => {
    const w = new EngineStallWatch(T);
    for (let now = 0; now <= 300_000; now += 10_000) assert.equal(w.sample({ now, waiting: 4, sinceBytesMs: null, figures: null }), null, `figures unknown at ${now}`);
    const v = new EngineStallWatch(T);
    for (let now = 0; now <= 300_000; now += 10_000) assert.equal(v.sample({ now, waiting: now % 20_000 === 0 ? null : 4, sinceBytesMs: null, figures: frozen }), null, `proxy silent at ${now}`);
  });

  it('a /metrics read that fails neither restarts the count nor gives a verdict; the next read compares with the last one read', () => {
    const w = new EngineStallWatch(T);
    w.sample({ now: 0, waiting: 1, sinceBytesMs: null, figures: frozen });
    assert.equal(w.sample({ now: 10_000, waiting: 1, sinceBytesMs: null, figures: frozen }), null);
    assert.equal(w.sample({ now: 30_000, waiting: 1, sinceBytesMs: null, figures: null }), null, 'due, but nothing read: no verdict');
    assert.equal(w.quietFor(30_000), 30_000, 'and the count goes on');
    assert.equal(w.sample({ now: 40_000, waiting: 1, sinceBytesMs: null, figures: frozen }), 40_000, 'equal to the last read: no token in between');
    const v = new EngineStallWatch(T);
    v.sample({ now: 0, waiting: 1, sinceBytesMs: null, figures: frozen });
    v.sample({ now: 20_000, waiting: 1, sinceBytesMs: null, figures: null });
    assert.equal(v.sample({ now: 40_000, waiting: 1, sinceBytesMs: null, figures: 'vllm:generation_tokens_total=150' }), null, 'tokens made while unread');
    assert.equal(v.quietFor(40_000), 0);
  });

  it('reset() forgets the spell (a new vLLM)', () => {
    const w = new EngineStallWatch(T);
    w.sample({ now: 0, waiting: 1, sinceBytesMs: null, figures: frozen });
    w.reset();
    assert.equal(w.sample({ now: 40_000, waiting: 1, sinceBytesMs: null, figures: frozen }), null);
    assert.equal(w.sample({ now: 70_000, waiting: 1, sinceBytesMs: null, figures: frozen }), 30_000);
  });
});
