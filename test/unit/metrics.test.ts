// The Prometheus text exporter and the proxy's metric set (vLLM's vllm:* passed through).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from '../../src/metrics/registry.js';
import { ProxyMetrics } from '../../src/metrics/proxy-metrics.js';
import { vllmOnly } from '../../src/metrics/backend.js';
import { startUpstream } from '../helpers/upstream.js';

test('counters, gauges and histograms in the text format, label values escaped', () => {
  const r = new Registry();
  const c = r.add(new Counter('x_total', 'Things.', ['key', 'model']));
  const g = r.add(new Counter('x_open', 'Open.', [], 'gauge'));
  const h = r.add(new Histogram('x_seconds', 'Time.', ['key'], [0.1, 1]));
  c.inc(1, 'alice', 'm');
  c.inc(2, 'alice', 'm');
  c.inc(1, 'we"ird\\', 'm\n');
  g.set(3);
  h.observe(0.05, 'alice');
  h.observe(0.5, 'alice');
  h.observe(5, 'alice');
  assert.equal(
    r.render(),
    [
      '# HELP x_total Things.',
      '# TYPE x_total counter',
      'x_total{key="alice",model="m"} 3',
      'x_total{key="we\\"ird\\\\",model="m\\n"} 1',
      '# HELP x_open Open.',
      '# TYPE x_open gauge',
      'x_open 3',
      '# HELP x_seconds Time.',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{key="alice",le="0.1"} 1',
      'x_seconds_bucket{key="alice",le="1"} 2',
      'x_seconds_bucket{key="alice",le="+Inf"} 3',
      'x_seconds_sum{key="alice"} 5.55',
      'x_seconds_count{key="alice"} 3',
      '',
    ].join('\n'),
  );
});

test('proxy metrics: requests, tokens, state, restarts; vllm:* appended from the backend', async () => {
  const m = new ProxyMetrics('starting');
  m.request('alice', 'm', 200, 120, 20);
  m.request('alice', 'm', 429, 1, 1);
  m.countTokens('alice', 'm', 10, 4, false);
  m.rejected.inc(1, 'rpm');
  m.setState('ready');
  m.setState('restarting');
  m.setState('restarting');
  m.setState('ready');
  const up = await startUpstream();
  try {
    const text = await m.render(up.url);
    assert.match(text, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 1$/m);
    assert.match(text, /^llmserve_requests_total\{key="alice",model="m",status="429"\} 1$/m);
    assert.match(text, /^llmserve_tokens_total\{key="alice",model="m",kind="prompt"\} 10$/m);
    assert.match(text, /^llmserve_tokens_total\{key="alice",model="m",kind="completion"\} 4$/m);
    assert.match(text, /^llmserve_rejected_total\{reason="rpm"\} 1$/m);
    assert.match(text, /^llmserve_backend_restarts_total 1$/m);
    assert.match(text, /^llmserve_backend_state\{state="ready"\} 1$/m);
    assert.match(text, /^llmserve_backend_state\{state="restarting"\} 0$/m);
    assert.match(text, /^llmserve_request_duration_seconds_bucket\{key="alice",model="m",le="0.25"\} 2$/m);
    assert.match(text, /^llmserve_time_to_first_byte_seconds_count\{key="alice",model="m"\} 2$/m);
    assert.match(text, /^llmserve_backend_metrics_up 1$/m);
    assert.match(text, /^vllm:num_requests_running 0$/m);
  } finally {
    await up.close();
  }
  const down = await m.render('http://127.0.0.1:9');
  assert.match(down, /^llmserve_backend_metrics_up 0$/m);
});

test('only vllm: families pass through', () => {
  const page = '# HELP python_gc x\npython_gc 1\n# HELP vllm:a A\n# TYPE vllm:a gauge\nvllm:a{x="1"} 2\nprocess_cpu 3\n';
  assert.equal(vllmOnly(page), '# HELP vllm:a A\n# TYPE vllm:a gauge\nvllm:a{x="1"} 2\n');
});
