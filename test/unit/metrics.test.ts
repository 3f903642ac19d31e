// The Prometheus text exporter and the proxy's metric set (vLLM's vllm:* passed through).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry } from '../../src/metrics/registry.js';
import { ProxyMetrics } from '../../src/metrics/proxy-metrics.js';
import { fetchAllBackendMetrics, vllmOnly } from '../../src/metrics/backend.js';
import { mergeExpositions } from '../../src/metrics/merge.js';
import { labelModel } from '../../src/metrics/model-label.js';
import { createRouter, metricsBackends } from '../../src/proxy/router.js';
import { proxySettings } from '../../src/proxy/settings.js';
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
  // Restarts are the supervisor's count, whatever the state does; a stale, lower total never lowers it.
  m.setRestarts(2);
  m.setRestarts(1);
  const up = await startUpstream();
  try {
    const text = await m.render({ backends: [{ url: up.url, name: 'm' }], several: false });
    assert.match(text, /^llmserve_requests_total\{key="alice",model="m",status="200"\} 1$/m);
    assert.match(text, /^llmserve_requests_total\{key="alice",model="m",status="429"\} 1$/m);
    assert.match(text, /^llmserve_tokens_total\{key="alice",model="m",kind="prompt"\} 10$/m);
    assert.match(text, /^llmserve_tokens_total\{key="alice",model="m",kind="completion"\} 4$/m);
    assert.match(text, /^llmserve_rejected_total\{reason="rpm"\} 1$/m);
    assert.match(text, /^llmserve_backend_restarts_total 2$/m);
    assert.match(text, /^llmserve_backend_state\{state="ready"\} 1$/m);
    assert.match(text, /^llmserve_backend_state\{state="restarting"\} 0$/m);
    assert.match(text, /^llmserve_request_duration_seconds_bucket\{key="alice",model="m",le="0.25"\} 2$/m);
    assert.match(text, /^llmserve_time_to_first_byte_seconds_count\{key="alice",model="m"\} 2$/m);
    assert.match(text, /^llmserve_backend_metrics_up 1$/m);
    assert.match(text, /^vllm:num_requests_running 0$/m);
  } finally {
    await up.close();
  }
  const down = await m.render({ backends: [{ url: 'http://127.0.0.1:9', name: 'm' }], several: false });
  assert.match(down, /^llmserve_backend_metrics_up 0$/m);
});

test('only vllm: families pass through', () => {
  const page = '# HELP python_gc x\npython_gc 1\n# HELP vllm:a A\n# TYPE vllm:a gauge\nvllm:a{x="1"} 2\nprocess_cpu 3\n';
  assert.equal(vllmOnly(page), '# HELP vllm:a A\n# TYPE vllm:a gauge\nvllm:a{x="1"} 2\n');
});

/** One model's vLLM page, in prometheus_client's layout (a histogram's _sum first, as vLLM writes it). */
const vllmPage = (model: string, running: number, extra = '') =>
  [
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running{engine="0",model_name="${model}"} ${running}`,
    '# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.',
    '# TYPE vllm:e2e_request_latency_seconds histogram',
    `vllm:e2e_request_latency_seconds_sum{engine="0",model_name="${model}"} 1.5`,
    `vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="${model}"} 1`,
    `vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="${model}"} 2`,
    `vllm:e2e_request_latency_seconds_count{engine="0",model_name="${model}"} 2`,
    extra,
  ].join('\n');

test('merging pages: each family once, HELP and TYPE first, all samples of both pages grouped under it', () => {
  const only = '# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{engine="0",model_name="beta"} 7\n';
  const alpha = vllmPage('alpha', 1);
  const beta = vllmPage('beta', 3, only);
  assert.equal(
    mergeExpositions([alpha, beta]),
    [
      '# HELP vllm:num_requests_running Number of requests in model execution batches.',
      '# TYPE vllm:num_requests_running gauge',
      'vllm:num_requests_running{engine="0",model_name="alpha"} 1',
      'vllm:num_requests_running{engine="0",model_name="beta"} 3',
      '# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.',
      '# TYPE vllm:e2e_request_latency_seconds histogram',
      'vllm:e2e_request_latency_seconds_sum{engine="0",model_name="alpha"} 1.5',
      'vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="alpha"} 1',
      'vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="alpha"} 2',
      'vllm:e2e_request_latency_seconds_count{engine="0",model_name="alpha"} 2',
      'vllm:e2e_request_latency_seconds_sum{engine="0",model_name="beta"} 1.5',
      'vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="beta"} 1',
      'vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="beta"} 2',
      'vllm:e2e_request_latency_seconds_count{engine="0",model_name="beta"} 2',
      '# HELP vllm:prompt_tokens_total Number of prefill tokens processed.',
      '# TYPE vllm:prompt_tokens_total counter',
      'vllm:prompt_tokens_total{engine="0",model_name="beta"} 7',
      '',
    ].join('\n'),
  );
  // Every sample line of both pages is there, once.
  const samples = (t: string) => t.split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();
  assert.deepEqual(samples(mergeExpositions([alpha, beta])), [...samples(alpha), ...samples(beta)].sort());
  assert.equal(mergeExpositions([alpha]), alpha, 'one page stays as it was');
  assert.equal(mergeExpositions([]), '');
  // Samples without HELP/TYPE join the family another page described.
  assert.equal(mergeExpositions(['vllm:a 1\nvllm:b 2\n', '# TYPE vllm:a gauge\nvllm:a{m="x"} 3\n']), '# TYPE vllm:a gauge\nvllm:a 1\nvllm:a{m="x"} 3\nvllm:b 2\n');
});

/** A tiny backend serving `page` at /metrics (null: accepts and never answers). */
async function metricsBackend(page: string | null): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    if (page !== null) res.end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

test('labelModel: a sample without a model_name label gets its model\'s; one with it, and every other line, stay as they are', () => {
  const page = [
    '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
    '# TYPE vllm:cache_config_info gauge',
    'vllm:cache_config_info{block_size="16",engine="0"} 1.0',
    'vllm:num_requests_running{engine="0",model_name="alpha"} 1.0',
    'vllm:bare 2',
    'vllm:empty{} 3',
    // A value that holds the text `model_name="`, a `}` and escaped quotes is a value, not a label.
    'vllm:lora_requests_info{max_lora="1",running_lora_adapters="x\\",model_name=\\"y\\"}",waiting_lora_adapters=""} 1.7e+09',
    'vllm:spaced{ model_name = "alpha" } 4',
    '',
  ].join('\n');
  assert.equal(
    labelModel(page, 'org/Qwen "7B"'),
    [
      '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
      '# TYPE vllm:cache_config_info gauge',
      'vllm:cache_config_info{model_name="org/Qwen \\"7B\\"",block_size="16",engine="0"} 1.0',
      'vllm:num_requests_running{engine="0",model_name="alpha"} 1.0',
      'vllm:bare{model_name="org/Qwen \\"7B\\""} 2',
      'vllm:empty{model_name="org/Qwen \\"7B\\""} 3',
      'vllm:lora_requests_info{model_name="org/Qwen \\"7B\\"",max_lora="1",running_lora_adapters="x\\",model_name=\\"y\\"}",waiting_lora_adapters=""} 1.7e+09',
      'vllm:spaced{ model_name = "alpha" } 4',
      '',
    ].join('\n'),
  );
});

test('several models: every backend\'s vllm:* merged into the page; one down or hanging costs only its own samples', async () => {
  // vLLM's info gauges carry no model_name: alike in both pages, they must come out as two series, one per model.
  const info = '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{block_size="16",engine="0"} 1.0\n';
  const [alpha, beta, hanging] = [await metricsBackend(vllmPage('alpha', 1, 'python_gc_objects 4\n' + info)), await metricsBackend(vllmPage('beta', 3, info)), await metricsBackend(null)];
  try {
    const m = new ProxyMetrics('ready');
    const text = await m.render({ backends: [{ url: alpha.url, name: 'alpha' }, { url: beta.url, name: 'beta' }], several: true });
    assert.match(text, /^vllm:num_requests_running\{engine="0",model_name="alpha"\} 1$/m);
    assert.match(text, /^vllm:num_requests_running\{engine="0",model_name="beta"\} 3$/m);
    assert.match(text, /^vllm:e2e_request_latency_seconds_count\{engine="0",model_name="beta"\} 2$/m);
    assert.equal(text.match(/^# TYPE vllm:num_requests_running gauge$/gm)?.length, 1);
    assert.equal(text.match(/^# HELP vllm:e2e_request_latency_seconds /gm)?.length, 1);
    assert.doesNotMatch(text, /python_gc/);
    assert.match(text, /^llmserve_backend_metrics_up 1$/m);
    assert.deepEqual(
      text.split('\n').filter((l) => l.startsWith('vllm:cache_config_info')),
      ['vllm:cache_config_info{model_name="alpha",block_size="16",engine="0"} 1.0', 'vllm:cache_config_info{model_name="beta",block_size="16",engine="0"} 1.0'],
    );

    const down = await m.render({ backends: [{ url: alpha.url, name: 'alpha' }, { url: 'http://127.0.0.1:9', name: 'beta' }], several: true });
    assert.match(down, /model_name="alpha"/);
    assert.match(down, /^llmserve_backend_metrics_up 0$/m, 'not every model could be read');

    const started = performance.now();
    const slow = await fetchAllBackendMetrics({ backends: [{ url: hanging.url, name: 'gamma' }, { url: beta.url, name: 'beta' }, { url: alpha.url, name: 'alpha' }], several: true }, 300);
    assert.ok(performance.now() - started < 1500, 'fetched concurrently, bounded by one timeout');
    assert.equal(slow.up, false);
    assert.match(slow.text, /model_name="alpha"/);
    assert.match(slow.text, /model_name="beta"/);
  } finally {
    await Promise.all([alpha.close(), beta.close(), hanging.close()]);
  }
});

test('several models: a model that gave up is no longer scraped, so llmserve_backend_metrics_up can recover', () => {
  const settings = proxySettings({
    backendUrl: 'http://127.0.0.1:3000',
    backends: [
      { name: 'a', url: 'http://127.0.0.1:3000' },
      { name: 'b', url: 'http://127.0.0.1:3001' },
    ],
  });
  assert.deepEqual(metricsBackends(settings, null), { backends: [{ url: 'http://127.0.0.1:3000', name: settings.servedModelName }], several: false });
  const router = createRouter(settings, () => 0)!;
  assert.deepEqual(metricsBackends(settings, router), {
    backends: [
      { url: 'http://127.0.0.1:3000', name: 'a' },
      { url: 'http://127.0.0.1:3001', name: 'b' },
    ],
    several: true,
  });
  router.targets[1]!.state = 'failed';
  // Still several models: the one left keeps its labels (below).
  assert.deepEqual(metricsBackends(settings, router), { backends: [{ url: 'http://127.0.0.1:3000', name: 'a' }], several: true });
});

test('several models, one left after the other gave up: its unlabelled series keep the model_name they had', async () => {
  const info = '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{block_size="16",engine="0"} 1.0\n';
  const beta = await metricsBackend(vllmPage('beta', 3, info));
  try {
    const m = new ProxyMetrics('ready');
    // Before, one backend left was read as one model: its page as vLLM wrote it, the series' identity changed.
    const text = await m.render({ backends: [{ url: beta.url, name: 'beta' }], several: true });
    assert.deepEqual(text.split('\n').filter((l) => l.startsWith('vllm:cache_config_info')), ['vllm:cache_config_info{model_name="beta",block_size="16",engine="0"} 1.0']);
    // One model served: the page stays exactly as vLLM wrote it.
    const single = await m.render({ backends: [{ url: beta.url, name: 'beta' }], several: false });
    assert.deepEqual(single.split('\n').filter((l) => l.startsWith('vllm:cache_config_info')), ['vllm:cache_config_info{block_size="16",engine="0"} 1.0']);
  } finally {
    await beta.close();
  }
});
