// check: its lean argument parser, which checks it plans, how it judges replies, its text and JSON, its concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCheckArgs } from '../../src/check/args.js';
import { judge, listedModels, planChecks, runChecks, workerReport, type HttpGet } from '../../src/check/run.js';
import { busyInReadiness } from '../../src/check/busy.js';
import { checkLines, formatMs } from '../../src/check/text.js';
import type { CheckTargets } from '../../src/check/types.js';
import { runCheck, type CheckOptions } from '../../src/commands/check.js';
import { LlmserveError } from '../../src/errors.js';
import type { HttpCheckResult } from '../../src/probes/http-check.js';
import { tempDir } from '../helpers/fixtures.js';

const KEY = 'sk-check-unit-KEY-77aa88bb99cc';
const targets = (over: Partial<CheckTargets> = {}): CheckTargets => ({
  proxy: { host: '127.0.0.1', port: 8080, tls: false },
  backend: { host: '127.0.0.1', port: 3000 },
  model: 'm1',
  key: KEY,
  auth: true,
  skipAuthenticated: null,
  runtimeFile: null,
  probeDir: '/etc/probe',
  ...over,
});
const reply = (over: Partial<HttpCheckResult> = {}): HttpCheckResult => ({ ok: true, status: 200, ms: 1.2, error: null, body: '', ...over });
const modelsBody = (...ids: string[]) => JSON.stringify({ object: 'list', data: ids.map((id) => ({ id, object: 'model' })) });

test('parseCheckArgs: every flag, both spellings; anything unusual goes to the full CLI (null)', () => {
  assert.deepEqual(parseCheckArgs([]), {});
  assert.deepEqual(parseCheckArgs(['--json', '--timeout', '0.5', '--port=9000', '--backend-port', '3001', '--probe-dir', '/p', '--config', 'c.yaml', '--model', 'm', '--served-model-name', 's', '--host', '::1', '--log-format', 'json']), {
    json: true, timeout: '0.5', port: '9000', backendPort: '3001', probeDir: '/p', config: 'c.yaml', model: 'm', servedModelName: 's', host: '::1', logFormat: 'json',
  });
  assert.deepEqual(parseCheckArgs(['--engine-stall-timeout', '300', '--stall-timeout=60']), { engineStallTimeout: '300', stallTimeout: '60' });
  for (const odd of [['--help'], ['-h'], ['--bogus'], ['--port'], ['--port', '--json'], ['extra'], ['--', 'x'], ['--log-format', 'yaml']]) {
    assert.equal(parseCheckArgs(odd), null, JSON.stringify(odd));
  }
});

test('planChecks: the four checks, the key as a Bearer header, https with TLS, IPv6 brackets', () => {
  const { specs, skipped } = planChecks(targets());
  assert.deepEqual(specs.map((s) => [s.name, s.url]), [
    ['vllm /health', 'http://127.0.0.1:3000/health'],
    ['vllm /v1/models', 'http://127.0.0.1:3000/v1/models'],
    ['proxy /health/liveness', 'http://127.0.0.1:8080/health/liveness'],
    ['proxy /v1/models', 'http://127.0.0.1:8080/v1/models'],
  ]);
  assert.deepEqual(specs[3]?.headers, { authorization: `Bearer ${KEY}` });
  assert.equal(specs[3]?.expectModel, 'm1');
  assert.deepEqual(skipped, []);
  const tls = planChecks(targets({ proxy: { host: '::1', port: 8443, tls: true } }));
  assert.equal(tls.specs[2]?.url, 'https://[::1]:8443/health/liveness');
});

test('planChecks: only digests -> the authenticated check is skipped and says why; auth off -> checked without a key', () => {
  const digests = planChecks(targets({ key: null, skipAuthenticated: 'only key digests (key_sha256) are configured' }));
  assert.equal(digests.specs.length, 3);
  assert.deepEqual(digests.skipped, [{ name: 'proxy /v1/models (authenticated)', reason: 'only key digests (key_sha256) are configured' }]);
  const open = planChecks(targets({ key: null, auth: false }));
  assert.equal(open.specs[3]?.headers, undefined);
  assert.equal(open.skipped.length, 0);
});

test('judge: 2xx passes; a model list must contain the public name; HTTP errors and timeouts say why', () => {
  const spec = { name: 'proxy /v1/models', url: 'http://x/v1/models', expectModel: 'm1' };
  assert.deepEqual(judge(spec, reply({ body: modelsBody('m1') })), { name: spec.name, url: spec.url, ok: true, status: 200, ms: 1.2, error: null });
  const other = judge(spec, reply({ body: modelsBody('m2') }));
  assert.equal(other.ok, false);
  assert.equal(other.error, 'model "m1" is not listed (listed: "m2")');
  assert.match(judge(spec, reply({ body: '<html>' })).error ?? '', /^not a model list: <html>/);
  const denied = judge(spec, reply({ ok: false, status: 401, body: '{"error":{"code":"invalid_api_key"}}' }));
  assert.equal(denied.ok, false);
  assert.equal(denied.error, 'HTTP 401: {"error":{"code":"invalid_api_key"}}');
  const timeout = judge({ name: 'vllm /health', url: 'http://x/health' }, reply({ ok: false, status: null, error: 'timed out after 500 ms' }));
  assert.deepEqual([timeout.ok, timeout.status, timeout.error], [false, null, 'timed out after 500 ms']);
  assert.deepEqual(listedModels(modelsBody('a', 'b')), ['a', 'b']);
  assert.equal(listedModels('{}'), null);
});

test('runChecks runs every check at once and is healthy only when all pass', async () => {
  const started: string[] = [];
  const release: (() => void)[] = [];
  const get: HttpGet = (url) => {
    started.push(url);
    return new Promise((resolve) => release.push(() => resolve(reply({ body: url.endsWith('/v1/models') ? modelsBody('m1') : '' }))));
  };
  const pending = runChecks(targets(), 5000, get);
  // All four requests are out before any has answered.
  await new Promise((r) => setImmediate(r));
  assert.equal(started.length, 4);
  for (const r of release) r();
  const report = await pending;
  assert.equal(report.healthy, true);
  assert.deepEqual(report.checks.map((c) => c.ok), [true, true, true, true]);

  const failing = await runChecks(targets(), 5000, async (url) => (url.includes(':3000/health') ? reply({ ok: false, status: null, error: 'ECONNREFUSED' }) : reply({ body: modelsBody('m1') })));
  assert.equal(failing.healthy, false);
  assert.deepEqual(failing.checks.filter((c) => !c.ok).map((c) => c.name), ['vllm /health']);
});

test('runChecks: a 401 to the chosen key tries the fallback keys in order (a key the proxy has not loaded yet); all refused still fails', async () => {
  const sent: string[] = [];
  const accepting = (accepted: string) => async (url: string, options: { headers?: Record<string, string> }) => {
    const auth = options.headers?.authorization;
    if (auth !== undefined) sent.push(auth);
    if (auth !== undefined && auth !== `Bearer ${accepted}`) return reply({ ok: false, status: 401, body: '{"error":{"code":"invalid_api_key"}}' });
    return reply({ body: url.endsWith('/v1/models') ? modelsBody('m1') : '' });
  };
  const t = targets({ key: 'new-key', fallbackKeys: ['old-key', 'older-key'] });
  const passed = await runChecks(t, 5000, accepting('old-key'));
  assert.equal(passed.healthy, true);
  assert.deepEqual(sent, ['Bearer new-key', 'Bearer old-key'], 'stops at the first key accepted');
  sent.length = 0;
  const refused = await runChecks(t, 5000, accepting('none-of-them'));
  assert.equal(refused.healthy, false);
  assert.deepEqual(sent, ['Bearer new-key', 'Bearer old-key', 'Bearer older-key']);
  assert.match(refused.checks.find((c) => c.name === 'proxy /v1/models')?.error ?? '', /^HTTP 401/);
  // Not for other failures: a 503 is the proxy's answer whatever the key.
  sent.length = 0;
  await runChecks(t, 5000, async (url, options) => (options.headers ? (sent.push(options.headers.authorization!), reply({ ok: false, status: 503 })) : reply({ body: modelsBody('m1') })));
  assert.deepEqual(sent, ['Bearer new-key']);
});

test('workerReport: a Ray worker is healthy when neither probe file is there; each file says what it means', () => {
  const worker = { pid: 42, head: '10.0.0.1:6379' };
  const files = (...present: string[]) => (file: string) => present.some((p) => file.endsWith(`/${p}`));
  const ok = workerReport(worker, '/probe', files());
  assert.equal(ok.healthy, true);
  assert.deepEqual(ok.skipped, [{ name: 'vLLM and proxy checks', reason: 'a Ray worker (pid 42) runs here: it serves no HTTP, vLLM and the proxy run on the head' }]);
  assert.match(workerReport(worker, '/probe', files('not-ready')).checks[0]?.error ?? '', /not joined to the Ray cluster at 10\.0\.0\.1:6379 yet/);
  const down = workerReport(worker, '/probe', files('not-ready', 'not-healthy'));
  assert.equal(down.healthy, false);
  assert.match(down.checks[0]?.error ?? '', /^not-healthy is present: the worker cannot reach its head 10\.0\.0\.1:6379/);
});

test('checkLines: one line per check with its time, failures with URL and reason, skips with their reason', () => {
  const lines = checkLines({
    healthy: false,
    checks: [
      { name: 'vllm /health', url: 'http://127.0.0.1:3000/health', ok: true, status: 200, ms: 1.2, error: null },
      { name: 'proxy /health/liveness', url: 'http://127.0.0.1:8080/health/liveness', ok: false, status: null, ms: 500.4, error: 'timed out after 500 ms' },
    ],
    skipped: [{ name: 'proxy /v1/models (authenticated)', reason: 'only key digests' }],
  });
  assert.deepEqual(lines, [
    'ok   vllm /health            1.2 ms',
    'FAIL proxy /health/liveness  500 ms  http://127.0.0.1:8080/health/liveness: timed out after 500 ms',
    'skip proxy /v1/models (authenticated): only key digests',
  ]);
  assert.equal(formatMs(12.345), '12.3 ms');
});

test('runCheck: --timeout is validated (exit 2), the JSON shape, the key masked even if a server echoes it', async () => {
  const cwd = await tempDir();
  const env = { LLMSERVE_MASTER_KEY: KEY, LLMSERVE_PROBE_DIR: cwd, LLMSERVE_MODEL: 'org/m1' };
  for (const bad of ['0', '-1', 'abc', '']) {
    await assert.rejects(runCheck({ timeout: bad }, { env, cwd }), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && /--timeout/.test(err.message));
  }
  // Flags of start's command line that check ignores are still refused when start would refuse them (exit 2).
  const refused: [keyof CheckOptions, string, RegExp][] = [
    ['healthInterval', 'abc', /--health-interval/],
    ['stopTimeout', '0', /--stop-timeout/],
    ['drainDelay', '-1', /--drain-delay/],
    ['engineStallTimeout', '5m', /--engine-stall-timeout/],
    ['tensorParallelSize', '0', /--tensor-parallel-size/],
    ['restart', 'bogus', /--restart: expected "on-failure" or "never"/],
  ];
  for (const [key, value, pattern] of refused) {
    const get: HttpGet = async () => assert.fail('nothing may be checked with an unusable flag');
    await assert.rejects(runCheck({ [key]: value }, { env, cwd, get }), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && pattern.test(err.message), `${key}=${value}`);
  }
  let out = '';
  const seen: number[] = [];
  const get: HttpGet = async (url, o) => {
    seen.push(o.timeoutMs);
    return reply({ body: url.endsWith('/v1/models') ? modelsBody('m1') : `echo ${KEY}`, ...(url.includes('liveness') ? { ok: false, status: 500 } : {}) });
  };
  const code = await runCheck({ json: true, timeout: '0.25' }, { env, cwd, get, write: (t) => (out += t) });
  assert.equal(code, 1);
  assert.deepEqual(seen, [250, 250, 250, 250]);
  assert.ok(!out.includes(KEY));
  const doc = JSON.parse(out) as { healthy: boolean; checks: Record<string, unknown>[] };
  assert.equal(doc.healthy, false);
  assert.deepEqual(Object.keys(doc.checks[0] ?? {}), ['name', 'url', 'ok', 'status', 'ms', 'error']);
  assert.match(String(doc.checks[2]?.error), /^HTTP 500: echo \[redacted\]$/);
});

test('runCheck without a runtime file in the probe directory: a failure says where it looked and how to find a start elsewhere; --json unchanged', async () => {
  const cwd = await tempDir();
  const env = { LLMSERVE_MASTER_KEY: KEY, LLMSERVE_PROBE_DIR: cwd, LLMSERVE_MODEL: 'org/m1' };
  const refused: HttpGet = async () => reply({ ok: false, status: null, error: 'connect ECONNREFUSED' });
  let out = '';
  assert.equal(await runCheck({}, { env, cwd, get: refused, write: (t) => (out += t) }), 1);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.length, 5, out);
  assert.equal(lines[4], `no runtime file (llmserve.json) of a running llmserve in probe directory ${cwd}: checked port 8080 (proxy) and 3000 (vLLM) as start resolves them (flags, environment, config file, defaults); for a start that said "using DIR instead", run: llmserve check --probe-dir DIR`);
  // --json keeps its documented shape: no extra field, no extra line.
  out = '';
  await runCheck({ json: true }, { env, cwd, get: refused, write: (t) => (out += t) });
  assert.deepEqual(Object.keys(JSON.parse(out) as object), ['healthy', 'checks', 'skipped']);
  // Healthy: nothing to explain.
  out = '';
  const fine: HttpGet = async (url) => reply({ body: url.endsWith('/v1/models') ? modelsBody('m1') : '' });
  assert.equal(await runCheck({}, { env, cwd, get: fine, write: (t) => (out += t) }), 0);
  assert.ok(!out.includes('runtime file'), out);
});

test('several models under probes.require: any: healthy while one model passes; all: every model must', async () => {
  const backends = [
    { host: '127.0.0.1', port: 3000, model: 'a' },
    { host: '127.0.0.1', port: 3001, model: 'b' },
  ];
  const get = (down: Set<number>, proxyDown = false): HttpGet => async (url) => {
    const port = Number(new URL(url).port);
    if (down.has(port) || (proxyDown && port === 8080)) return reply({ ok: false, status: null, error: 'ECONNREFUSED' });
    if (url.endsWith('/v1/models')) return reply({ body: modelsBody(port === 3001 ? 'b' : 'a') });
    return reply();
  };
  const any = targets({ backends, require: 'any', model: 'a' });
  const bDown = await runChecks(any, 1000, get(new Set([3001])));
  assert.equal(bDown.healthy, true);
  assert.ok(bDown.checks.some((c) => !c.ok && c.name.startsWith('vllm b')), 'the failing model is still reported');
  assert.match(checkLines(bDown).join('\n'), /healthy: probes\.require is any, and another model passes/);
  assert.equal((await runChecks(any, 1000, get(new Set([3000, 3001])))).healthy, false, 'no model left');
  assert.equal((await runChecks(any, 1000, get(new Set([3001]), true))).healthy, false, 'the proxy itself must pass');
  assert.equal((await runChecks(targets({ backends, require: 'all', model: 'a' }), 1000, get(new Set([3001])))).healthy, false);
  assert.equal((await runChecks(targets({ backends, model: 'a' }), 1000, get(new Set([3001])))).healthy, false, 'all is the default');
});

test('several models under probes.require: any: the first model gave up for good (the proxy no longer lists it) -> healthy while another serves', async () => {
  const backends = [
    { host: '127.0.0.1', port: 3000, model: 'alpha' },
    { host: '127.0.0.1', port: 3001, model: 'beta' },
    { host: '127.0.0.1', port: 3002, model: 'gamma' },
  ];
  // alpha's vLLM is gone; the proxy lists the models it still serves (and an alias).
  const get = (proxyList: string[]): HttpGet => async (url) => {
    const port = Number(new URL(url).port);
    if (port === 3000) return reply({ ok: false, status: null, error: 'ECONNREFUSED' });
    if (url.endsWith('/v1/models')) return reply({ body: modelsBody(...(port === 8080 ? proxyList : [backends.find((b) => b.port === port)?.model ?? ''])) });
    return reply();
  };
  const any = targets({ backends, require: 'any', model: 'alpha' });
  const served = await runChecks(any, 1000, get(['beta', 'gamma', 'b']));
  assert.equal(served.healthy, true);
  assert.equal(served.checks.find((c) => c.name === 'proxy /v1/models')?.ok, true);
  const none = await runChecks(any, 1000, get(['b']));
  assert.equal(none.healthy, false, 'a proxy that lists none of the models fails');
  assert.equal(none.checks.find((c) => c.name === 'proxy /v1/models')?.error, 'none of the models "alpha", "beta", "gamma" is listed (listed: "b")');
  const all = await runChecks(targets({ backends, require: 'all', model: 'alpha' }), 1000, get(['beta', 'gamma']));
  assert.equal(all.checks.find((c) => c.name === 'proxy /v1/models')?.error, 'model "alpha" is not listed (listed: "beta", "gamma")', 'all: the first model must be listed, as before');
});

/**
 * A service whose vLLM answers nothing in time (its checks and the proxy's /v1/models time out at the deadline, as
 * rawGet reports it), while the proxy's readiness answers `readiness` after `readinessMs`. Records every URL asked.
 */
function saturatedGet(readiness: { status: number | null; body: string } | null, readinessMs = 10): { get: HttpGet; asked: { url: string; timeoutMs: number; at: number }[] } {
  const asked: { url: string; timeoutMs: number; at: number }[] = [];
  const started = performance.now();
  const get: HttpGet = (url, o) => {
    asked.push({ url, timeoutMs: o.timeoutMs, at: performance.now() - started });
    const late = (ms: number, r: HttpCheckResult) => new Promise<HttpCheckResult>((resolve) => setTimeout(() => resolve(r), ms));
    if (url.endsWith('/health/liveness')) return Promise.resolve(reply({ body: '"I\'m alive!"' }));
    if (url.endsWith('/health/readiness')) {
      if (readiness === null) return late(o.timeoutMs, reply({ ok: false, status: null, error: `timed out after ${o.timeoutMs} ms`, timedOut: true }));
      return late(readinessMs, reply({ ok: readiness.status === 200, status: readiness.status, body: readiness.body }));
    }
    return late(o.timeoutMs, reply({ ok: false, status: null, ms: o.timeoutMs, error: `timed out after ${o.timeoutMs} ms`, timedOut: true }));
  };
  return { get, asked };
}
const BUSY_READY = { status: 200, body: JSON.stringify({ status: 'healthy', state: 'ready', backend: 'busy: /health did not answer within 1000 ms, but responses are flowing' }) };

test('a saturated vLLM (every vLLM check times out, the proxy says busy): healthy, its checks marked busy; readiness asked once, not at once', async () => {
  const { get, asked } = saturatedGet(BUSY_READY);
  // Deadlines here leave a loaded CI machine's late timers a few hundred ms: a question asked too late finds no time left.
  const report = await runChecks(targets(), 400, get);
  assert.equal(report.healthy, true);
  assert.deepEqual(report.checks.map((c) => [c.name, c.ok, c.busy !== undefined]), [
    ['vllm /health', true, true],
    ['vllm /v1/models', true, true],
    ['proxy /health/liveness', true, false],
    ['proxy /v1/models', true, true],
  ]);
  assert.equal(report.checks[0]?.error, null);
  assert.equal(report.checks[0]?.status, null);
  assert.match(String(report.checks[0]?.busy), /^no answer within 400 ms, but the proxy is relaying vLLM's responses: saturated, not hung$/);
  const readiness = asked.filter((a) => a.url === 'http://127.0.0.1:8080/health/readiness');
  assert.equal(readiness.length, 1, 'one readiness request for all the late checks');
  assert.ok(readiness[0]!.at >= 190, `asked halfway through a short deadline, not at once (at ${readiness[0]!.at} ms)`);
  assert.ok(readiness[0]!.timeoutMs <= 210, `within what is left of the deadline (${readiness[0]!.timeoutMs} ms)`);
  // A longer deadline: asked after 250 ms, so that readiness (which gives vLLM's /health 1 s) can answer in time.
  const long = saturatedGet(BUSY_READY);
  assert.equal((await runChecks(targets(), 1500, long.get)).healthy, true);
  const at = long.asked.find((a) => a.url.endsWith('/health/readiness'))!;
  // Well before halfway (750 ms), with a generous margin for a timer that fires late on a loaded machine.
  assert.ok(at.at >= 240 && at.at < 700 && at.timeoutMs > 800, JSON.stringify(at));
  assert.match(checkLines(report).join('\n'), /^busy vllm \/health +\d+ ms {2}no answer within 400 ms, but the proxy is relaying/m);
});

test('a hung vLLM (timeouts, and the proxy does not say busy, or does not answer): unhealthy as before', async () => {
  const hung = { status: 503, body: JSON.stringify({ status: 'unhealthy', state: 'ready', backend: 'backend unreachable (timed out)' }) };
  for (const [what, readiness] of [['503 not busy', hung], ['readiness late too', null], ['draining', { status: 503, body: JSON.stringify({ error: { message: 'draining' } }) }], ['not JSON', { status: 200, body: 'busy: ' }]] as const) {
    const report = await runChecks(targets(), 200, saturatedGet(readiness).get);
    assert.equal(report.healthy, false, what);
    assert.deepEqual(report.checks.filter((c) => !c.ok).map((c) => c.name), ['vllm /health', 'vllm /v1/models', 'proxy /v1/models'], what);
    assert.ok(report.checks.every((c) => c.busy === undefined), what);
  }
  // A check that failed otherwise (refused, an error status) is judged as it is, whatever readiness says.
  const refused: HttpGet = async (url) => (url.endsWith('/health/readiness') ? reply(BUSY_READY) : url.includes(':3000/') ? reply({ ok: false, status: null, error: 'ECONNREFUSED' }) : reply({ body: modelsBody('m1') }));
  const report = await runChecks(targets(), 200, refused);
  assert.deepEqual(report.checks.filter((c) => !c.ok).map((c) => c.error), ['ECONNREFUSED', 'ECONNREFUSED']);
});

test('a service that answers in time: readiness is never asked (the same requests as before)', async () => {
  const asked: string[] = [];
  const report = await runChecks(targets(), 200, async (url) => {
    asked.push(url);
    return reply({ body: url.endsWith('/v1/models') ? modelsBody('m1') : '' });
  });
  assert.equal(report.healthy, true);
  assert.ok(!asked.some((u) => u.includes('readiness')), asked.join(' '));
});

test('several models: only the model the proxy calls busy passes its timed-out checks', async () => {
  const backends = [
    { host: '127.0.0.1', port: 3000, model: 'a' },
    { host: '127.0.0.1', port: 3001, model: 'b' },
  ];
  const readiness = { status: 503, body: JSON.stringify({ status: 'unhealthy', state: 'ready', backend: 'a: busy: /health did not answer within 1000 ms, but responses are flowing; b: backend unreachable (timed out)' }) };
  const report = await runChecks(targets({ backends, model: 'a' }), 1000, saturatedGet(readiness).get);
  assert.deepEqual(report.checks.map((c) => [c.name, c.ok, c.busy !== undefined]), [
    ['vllm a /health', true, true],
    ['vllm a /v1/models', true, true],
    ['vllm b /health', false, false],
    ['vllm b /v1/models', false, false],
    ['proxy /health/liveness', true, false],
    ['proxy /v1/models', true, true],
  ]);
  assert.equal(report.healthy, false, 'require all: b must pass too');
  assert.equal((await runChecks(targets({ backends, model: 'a', require: 'any' }), 1000, saturatedGet(readiness).get)).healthy, true);
});

test('busyInReadiness: the proxy readiness detail, for one backend and for several', () => {
  assert.deepEqual(busyInReadiness(BUSY_READY.body), { single: true, models: new Set() });
  assert.deepEqual(busyInReadiness(JSON.stringify({ backend: 'alpha: busy: x; beta: healthy; gamma: busy: y' })), { single: false, models: new Set(['alpha', 'gamma']) });
  for (const body of ['', 'busy: x', 'null', '[]', JSON.stringify({ backend: 'healthy' }), JSON.stringify({ backend: 'unknown' }), JSON.stringify({ backend: 3 })]) assert.equal(busyInReadiness(body), null, body);
});

test('several models behind the proxy, one vLLM checked (--backend-port, or a runtime file without backends): only its own model being busy excuses it', async () => {
  // beta hung, alpha busy: `check --backend-port <beta's> --served-model-name beta` must not pass on alpha's traffic.
  const readiness = { status: 503, body: JSON.stringify({ status: 'unhealthy', state: 'ready', backend: 'alpha: busy: /health did not answer within 1000 ms, but responses are flowing; beta: backend unreachable (no answer within 1000 ms)' }) };
  const beta = await runChecks(targets({ model: 'beta' }), 1000, saturatedGet(readiness).get);
  assert.equal(beta.healthy, false);
  assert.deepEqual(beta.checks.filter((c) => !c.ok).map((c) => c.name), ['vllm /health', 'vllm /v1/models', 'proxy /v1/models']);
  assert.ok(beta.checks.every((c) => c.busy === undefined));
  const alpha = await runChecks(targets({ model: 'alpha' }), 1000, saturatedGet(readiness).get);
  assert.equal(alpha.healthy, true, 'the busy model itself still passes');
  assert.deepEqual(alpha.checks.filter((c) => c.busy !== undefined).map((c) => c.name), ['vllm /health', 'vllm /v1/models', 'proxy /v1/models']);
});

test('busyInReadiness: a model named "busy" (several models) is read as a model, not as the one backend being busy', () => {
  // Hung, listed first: nothing about it is busy, and it must not excuse every check.
  assert.equal(busyInReadiness(JSON.stringify({ backend: 'busy: backend unreachable (no answer within 1000 ms); alpha: healthy' })), null);
  assert.deepEqual(busyInReadiness(JSON.stringify({ backend: 'busy: backend unreachable (no answer within 1000 ms); alpha: busy: /health did not answer within 1000 ms, but responses are flowing' })), { single: false, models: new Set(['alpha']) });
  assert.deepEqual(busyInReadiness(JSON.stringify({ backend: 'busy: busy: /health did not answer within 1000 ms, but responses are flowing; alpha: healthy' })), { single: false, models: new Set(['busy']) });
});

test('runCheck warns about a misspelt LLMSERVE_* variable (on stderr, --json or not), as start and probe do', async () => {
  const cwd = await tempDir();
  const env = { LLMSERVE_MASTER_KEY: KEY, LLMSERVE_PROBEDIR: cwd, LLMSERVE_MODEL: 'org/m1' };
  const refused: HttpGet = async () => reply({ ok: false, status: null, error: 'connect ECONNREFUSED' });
  const warned: string[] = [];
  let out = '';
  assert.equal(await runCheck({ json: true }, { env, cwd, get: refused, write: (t) => (out += t), warn: (l) => warned.push(l) }), 1);
  assert.deepEqual(warned, ['environment variable LLMSERVE_PROBEDIR is not one llmserve reads (did you mean LLMSERVE_PROBE_DIR?); it is ignored']);
  assert.equal((JSON.parse(out) as { healthy: boolean }).healthy, false, 'stdout stays one JSON object');
});
