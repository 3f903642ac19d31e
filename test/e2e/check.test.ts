// `llmserve check` end to end against a running `llmserve start` (fake vLLM): healthy, wrong key, dead proxy, dead backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { envWithFakes, makeModelDir, tempDir, LITELLM_CONFIG } from '../helpers/fixtures.js';
import { binPath, runLlmserve } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { findByMarker, isAlive } from '../helpers/procs.js';
import { startService, TEST_KEY } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const KEY = 'sk-check-e2e-KEY-1f2e3d4c5b6a7980';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface CheckJson {
  healthy: boolean;
  checks: { name: string; url: string; ok: boolean; status: number | null; ms: number; error: string | null; busy?: string }[];
  skipped: { name: string; reason: string }[];
}

/** Runs `llmserve check ...` with the built bin; asserts it left nothing behind. */
async function check(args: string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  const marker = `llmserve-test-${randomUUID()}`;
  const started = performance.now();
  const child = spawn(process.execPath, [binPath, 'check', ...args], { env: envWithFakes({ LLMSERVE_TEST_MARKER: marker, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.deepEqual(findByMarker(marker), []);
  return { code, stdout, stderr, ms: performance.now() - started };
}

test('check against a running start: healthy, then a wrong key, a dead proxy and a dead backend each fail', async (t) => {
  const dir = await tempDir();
  const probeDir = path.join(dir, 'probe');
  const model = await makeModelDir();
  const served = path.basename(model);
  const [port, backendPort] = [await freePort(), await freePort()];
  // A 10 s restart backoff: the dead proxy and the dead backend below are still dead when check (a node process that
  // takes seconds to start on a loaded machine) looks; with the default 1 s a restarted one could answer it.
  const config = path.join(dir, 'llmserve.yaml');
  writeFileSync(config, 'restart: { backoff_initial: 10, backoff_max: 10 }\n');
  // Ports only on start's command line: check finds them through the runtime file in the probe directory.
  const run = runLlmserve(['start', '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir, '--config', config], {
    LLMSERVE_MASTER_KEY: KEY,
    FAKE_NVIDIA_SMI_GPUS: '1',
  });
  t.after(async () => assert.equal(await run.cleanup(), 0, 'no process may be left behind'));
  await run.waitForLine(/ready after/, 60_000);
  const base = ['--probe-dir', probeDir];

  // Healthy, JSON.
  const ok = await check([...base, '--json'], { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const doc = JSON.parse(ok.stdout) as CheckJson;
  assert.equal(doc.healthy, true);
  assert.deepEqual(doc.checks.map((c) => [c.name, c.url, c.ok, c.status, c.error]), [
    ['vllm /health', `http://127.0.0.1:${backendPort}/health`, true, 200, null],
    ['vllm /v1/models', `http://127.0.0.1:${backendPort}/v1/models`, true, 200, null],
    ['proxy /health/liveness', `http://127.0.0.1:${port}/health/liveness`, true, 200, null],
    ['proxy /v1/models', `http://127.0.0.1:${port}/v1/models`, true, 200, null],
  ]);
  for (const c of doc.checks) assert.deepEqual(Object.keys(c), ['name', 'url', 'ok', 'status', 'ms', 'error']);
  assert.ok(doc.checks.every((c) => typeof c.ms === 'number' && c.ms >= 0));
  assert.ok(!ok.stdout.includes(KEY));

  // Healthy, text: one line per check with its time.
  const text = await check(base, { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(text.code, 0);
  const lines = text.stdout.trim().split('\n');
  assert.equal(lines.length, 4, text.stdout);
  for (const l of lines) assert.match(l, /^ok {3}(vllm|proxy) \/\S+ +\d+(\.\d)? ms$/);

  // Flags given explicitly agree with the runtime file.
  assert.equal((await check([...base, '--port', String(port), '--backend-port', String(backendPort), '--served-model-name', served], { LLMSERVE_MASTER_KEY: KEY })).code, 0);
  // The wrong model name is caught by the /v1/models checks.
  const wrongModel = await check([...base, '--served-model-name', 'not-served', '--json'], { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(wrongModel.code, 1);
  assert.match((JSON.parse(wrongModel.stdout) as CheckJson).checks[3]?.error ?? '', /model "not-served" is not listed/);

  // A wrong key: the authenticated check fails with 401, the rest pass.
  const wrong = await check([...base, '--json'], { LLMSERVE_MASTER_KEY: 'sk-wrong-key-0000000000000000' });
  assert.equal(wrong.code, 1);
  const w = JSON.parse(wrong.stdout) as CheckJson;
  assert.equal(w.healthy, false);
  assert.deepEqual(w.checks.map((c) => c.ok), [true, true, true, false]);
  assert.equal(w.checks[3]?.status, 401);
  assert.ok(!wrong.stdout.includes('sk-wrong-key-0000000000000000'));

  // No key known to check: the authenticated check is skipped and says so; the rest still decide.
  const nokey = await check(base, { LLMSERVE_MASTER_KEY: undefined, LITELLM_MASTER_KEY: undefined });
  assert.equal(nokey.code, 0, nokey.stdout);
  assert.match(nokey.stdout, /^skip proxy \/v1\/models \(authenticated\): no key known/m);

  // Dead proxy: kill it and check at once (the supervisor waits its backoff before restarting it). The proxy itself,
  // the child of llmserve: its cluster workers have the same command line, and a worker killed is replaced while the
  // other serves (the pid order of /proc does not say which is which once pids wrap around).
  const proxy = await waitFor(() => findByMarker(run.marker).find((p) => / proxy$/.test(p.cmdline) && p.cmdline.includes('llmserve') && p.ppid === run.child.pid), { timeoutMs: 5000, message: 'the proxy process' });
  process.kill(proxy.pid, 'SIGKILL');
  await waitFor(() => !isAlive(proxy.pid), { timeoutMs: 5000, message: 'the proxy to die' });
  const deadProxy = await check([...base, '--json', '--timeout', '1'], { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(deadProxy.code, 1, deadProxy.stdout);
  const dp = JSON.parse(deadProxy.stdout) as CheckJson;
  assert.deepEqual(dp.checks.map((c) => c.ok), [true, true, false, false]);
  assert.equal(dp.checks[2]?.error, 'ECONNREFUSED');
  // The supervisor brings the proxy back; wait for that before the next case.
  await waitFor(async () => (await check(base, { LLMSERVE_MASTER_KEY: KEY })).code === 0, { timeoutMs: 60_000, intervalMs: 100, message: 'the proxy to be back' });

  // Dead backend: kill vLLM's API server; check fails within its timeout (plus start-up slack).
  const api = await waitFor(() => findByMarker(run.marker).find((p) => /\/vllm serve /.test(p.cmdline)), { timeoutMs: 5000, message: 'the vLLM API server' });
  process.kill(api.pid, 'SIGKILL');
  await waitFor(() => !isAlive(api.pid), { timeoutMs: 5000, message: 'vLLM to die' });
  const deadBackend = await check([...base, '--json', '--timeout', '0.5'], { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(deadBackend.code, 1, deadBackend.stdout);
  const db = JSON.parse(deadBackend.stdout) as CheckJson;
  // Each check within its 0.5 s timeout, as check itself timed it (the process's own start is no part of that).
  for (const c of db.checks) assert.ok(c.ms < 500 + 1000, `${c.name} took ${c.ms} ms`);
  assert.equal(db.healthy, false);
  assert.equal(db.checks[0]?.ok, false);
  assert.equal(db.checks[1]?.ok, false);

  // Stop start cleanly, so that teardown finds nothing left.
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});

test('nothing running: exit 1 quickly; bad --timeout: exit 2; --help still works through the full CLI', async () => {
  const probeDir = await tempDir();
  const [port, backendPort] = [await freePort(), await freePort()];
  const down = await check(['--probe-dir', probeDir, '--port', String(port), '--backend-port', String(backendPort), '--model', 'org/m', '--json'], { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(down.code, 1);
  const d = JSON.parse(down.stdout) as CheckJson;
  assert.deepEqual(d.checks.map((c) => c.error), ['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);

  const bad = await check(['--probe-dir', probeDir, '--timeout', 'soon'], { LLMSERVE_MASTER_KEY: KEY });
  assert.equal(bad.code, 2);
  // The same line as every other command's final error: the stable code included.
  assert.match(bad.stderr, /^llmserve \| error: --timeout: expected a positive number of seconds, got "soon" code=CONFIG$/m);
  assert.equal(bad.stdout, '');

  const help = await check(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--timeout <seconds>/);
  assert.equal((await check(['--no-such-flag'])).code, 2);
});

test('a LiteLLM config without a running service: the ports come from the config (3000 / 8080, 80 in production)', async () => {
  const dir = await tempDir();
  const config = path.join(dir, 'litellm.config.yaml');
  writeFileSync(config, LITELLM_CONFIG);
  for (const [env, proxyPort] of [[{}, 8080], [{ OPENBAYES_SERVING_PRODUCTION: '1' }, 80]] as const) {
    const r = await check(['--config', config, '--probe-dir', dir, '--json', '--timeout', '0.5'], { ...env, LLMSERVE_MASTER_KEY: undefined });
    const doc = JSON.parse(r.stdout) as CheckJson;
    assert.deepEqual(doc.checks.map((c) => new URL(c.url).port || '80'), ['3000', '3000', String(proxyPort), String(proxyPort)]);
    assert.ok(!r.stdout.includes('your-master-key-here'));
  }
});

test('no master key and a disabled first key: check sends the next usable key and passes; with none usable it skips (issue 4)', async (t) => {
  const dir = await tempDir();
  const probeDir = path.join(dir, 'probe');
  const model = await makeModelDir();
  const key = (name: string, extra = '') => `    - name: ${name}\n      key: sk-check-e2e-${name}-0123456789abcdef\n${extra}`;
  const config = path.join(dir, 'llmserve.yaml');
  writeFileSync(config, `proxy:\n  keys:\n${key('retired', '      disabled: true\n')}${key('live')}`);
  const [port, backendPort] = [await freePort(), await freePort()];
  const noMaster = { LLMSERVE_MASTER_KEY: undefined, LITELLM_MASTER_KEY: undefined };
  const run = runLlmserve(['start', '--config', config, '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir], {
    ...noMaster,
    FAKE_NVIDIA_SMI_GPUS: '1',
  });
  t.after(async () => assert.equal(await run.cleanup(), 0, 'no process may be left behind'));
  await run.waitForLine(/ready after/, 20_000);

  const ok = await check(['--config', config, '--probe-dir', probeDir, '--json'], noMaster);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const doc = JSON.parse(ok.stdout) as CheckJson;
  assert.deepEqual(doc.checks.map((c) => [c.name, c.ok, c.status]).at(-1), ['proxy /v1/models', true, 200]);
  assert.deepEqual(doc.skipped, []);

  // A config whose every raw key would be refused: the authenticated check is skipped with the reason, not failed.
  const retiredOnly = path.join(dir, 'retired.yaml');
  writeFileSync(retiredOnly, `proxy:\n  keys:\n${key('retired', '      disabled: true\n')}`);
  const skipped = await check(['--config', retiredOnly, '--probe-dir', probeDir], noMaster);
  assert.equal(skipped.code, 0, skipped.stdout + skipped.stderr);
  assert.match(skipped.stdout, /^skip proxy \/v1\/models \(authenticated\): no usable raw key: .*key "retired" is disabled/m);
  assert.ok(!(ok.stdout + skipped.stdout).includes('sk-check-e2e-'), 'no key in the output');

  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});

test('a saturated vLLM (it answers everything late while it streams): check passes and says busy; a hung one fails', async (t) => {
  // --health-interval 30: the supervisor's own checks stay out of the way (its first one fails only after 5 s). vLLM
  // answers 20 s late while busy: far beyond check's 5 s deadline and the check process's own start on a loaded
  // machine, so a check that waited for the answer is told from one that kept its deadline.
  const svc = await startService({ healthInterval: '30', stopTimeout: '1', env: { FAKE_VLLM_BUSY_HEALTH_MS: '20000', FAKE_VLLM_STREAM_CHUNKS: '2000', FAKE_VLLM_STREAM_INTERVAL_MS: '20' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const api = svc.vllmStarts()[0]!.pid;
  // A stopped API server (a hung one: nothing answers, nothing flows) must be running again for the cleanup.
  t.after(() => void (isAlive(api) && process.kill(api, 'SIGCONT')));
  const base = ['--probe-dir', svc.probeDir, '--json'];
  const env = { LLMSERVE_MASTER_KEY: TEST_KEY };
  const verdicts = (doc: CheckJson) => Object.fromEntries(doc.checks.map((c) => [c.name, c.busy !== undefined ? 'busy' : c.ok ? 'ok' : 'FAIL']));
  const HUNG = { 'vllm /health': 'FAIL', 'vllm /v1/models': 'FAIL', 'proxy /health/liveness': 'ok', 'proxy /v1/models': 'FAIL' };

  // Hung with no traffic: every request to vLLM times out and nothing flows through the proxy: unhealthy.
  process.kill(api, 'SIGSTOP');
  const idle = await check([...base, '--timeout', '1.5'], env);
  assert.equal(idle.code, 1, idle.stdout + idle.stderr);
  const idleDoc = JSON.parse(idle.stdout) as CheckJson;
  assert.deepEqual(verdicts(idleDoc), HUNG);
  assert.match(String(idleDoc.checks[0]?.error), /^timed out after 1500 ms$/);
  process.kill(api, 'SIGCONT');

  // Saturated (the fake's SIGUSR2), a stream flowing: every request to vLLM times out (/v1/models too, and through
  // the proxy), and check says why it passes, within its deadline.
  process.kill(api, 'SIGUSR2');
  const abort = new AbortController();
  const res = await svc.chat({ stream: true });
  t.after(() => abort.abort());
  const reader = res.body!.getReader();
  abort.signal.addEventListener('abort', () => void reader.cancel().catch(() => {}));
  await reader.read();
  const busy = await check([...base, '--timeout', '5'], env);
  assert.equal(busy.code, 0, busy.stdout + busy.stderr);
  const doc = JSON.parse(busy.stdout) as CheckJson;
  assert.deepEqual(verdicts(doc), { 'vllm /health': 'busy', 'vllm /v1/models': 'busy', 'proxy /health/liveness': 'ok', 'proxy /v1/models': 'busy' });
  assert.ok(doc.checks.every((c) => c.error === null));
  assert.ok(busy.ms < 15_000, `within the deadline, not after vLLM's late answer: ${Math.round(busy.ms)} ms`);
  const text = await check(['--probe-dir', svc.probeDir, '--timeout', '5'], env);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^busy vllm \/health +\d+ ms {2}no answer within 5000 ms, but the proxy is relaying vLLM's responses: saturated, not hung$/m);

  // It hangs mid-stream: once the proxy has relayed nothing for its busy window, a late vLLM is no longer excused.
  process.kill(api, 'SIGSTOP');
  await waitFor(async () => (await fetch(`http://127.0.0.1:${svc.port}/health/readiness`)).status === 503, { timeoutMs: 30_000, message: 'readiness no longer busy' });
  const hung = await check([...base, '--timeout', '1.5'], env);
  assert.equal(hung.code, 1, hung.stdout);
  assert.deepEqual(verdicts(JSON.parse(hung.stdout) as CheckJson), HUNG);
  process.kill(api, 'SIGCONT');
  abort.abort();
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
});
