// Start-up faults (issue 5 items 2 and 6): failure while loading, stall and start-up timeouts, SIGTERM during
// start-up, flags the installed vLLM rejects. Every case: exit code, probe files, messages, nothing left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { errorLines, startService, TEST_KEY, type Service } from '../helpers/service.js';
import { makeModelDir, tempDir } from '../helpers/fixtures.js';
import { runLlmserve } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { findByMarker, isAlive } from '../helpers/procs.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

const FAST_RESTART = 'restart: { backoff_initial: 0.1, backoff_max: 0.2 }\n';

test('vLLM fails while loading: its last lines and a diagnosis, exit 3, not retried, nothing left', async (t) => {
  const svc = await startService({ env: { FAKE_VLLM_MODE: 'fail-load' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  const { code } = await svc.run.exited;
  assert.equal(code, 3, svc.run.output());
  assert.match(errorLines(svc.run).join('\n'), /vLLM exited during start-up \(exit code 1\)/);
  assert.match(svc.run.output(), /last \d+ lines of vLLM:/);
  assert.match(svc.run.output(), /torch\.OutOfMemoryError: CUDA out of memory/);
  assert.match(svc.run.output(), /diagnosis: out of GPU memory/);
  assert.equal(svc.vllmStarts().length, 1, 'a first start-up failure is not retried');
  assert.ok(svc.probesDown(), 'both probe files at exit');
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test("vLLM's KV cache cannot hold one max-length request: diagnosed as such, with vLLM's estimate", async (t) => {
  const svc = await startService({ env: { FAKE_VLLM_MODE: 'fail-kv-cache' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  const { code } = await svc.run.exited;
  assert.equal(code, 3, svc.run.output());
  assert.match(svc.run.output(), /diagnosis: out of GPU memory for the KV cache: .*\(40960 tokens\).*\(vLLM estimates 9344 fits\)/);
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('vLLM prints nothing while loading: the stall timeout ends it, exit 3, nothing left', async (t) => {
  const svc = await startService({ config: 'stall_timeout: 0.6\n', env: { FAKE_VLLM_MODE: 'silent-load', FAKE_VLLM_LOAD_MS: '30000' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  const { code } = await svc.run.exited;
  assert.equal(code, 3, svc.run.output());
  assert.match(errorLines(svc.run)[0] ?? '', /vLLM printed nothing for 0\.6 s while starting \(stall timeout\)/);
  // The setting to raise is named, in the last line (no "last 0 lines of vLLM:" over an empty list).
  assert.match(svc.run.lines.at(-1) ?? '', /Fix: .*raise --stall-timeout \(stall_timeout, now 0\.6 s\)/, svc.run.output());
  assert.doesNotMatch(svc.run.output(), /last 0 lines/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('vLLM too slow to load: the hard start-up timeout ends it, exit 3, nothing left', async (t) => {
  const svc = await startService({ args: ['--startup-timeout', '0.8'], env: { FAKE_VLLM_LOAD_MS: '30000' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  const { code } = await svc.run.exited;
  assert.equal(code, 3, svc.run.output());
  assert.match(errorLines(svc.run)[0] ?? '', /vLLM was not ready within the start-up timeout \(0\.8 s\)/);
  assert.match(svc.run.lines.at(-1) ?? '', /Fix: .*raise --startup-timeout \(startup_timeout, now 0\.8 s\)/, svc.run.output());
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} during GPU discovery (a hanging nvidia-smi): exit 0, both probe files, the query stopped too`, async (t) => {
    const svc = await startService({ env: { FAKE_NVIDIA_SMI_MODE: 'hang' } });
    t.after(async () => assert.equal(await svc.run.cleanup(), 0));
    await waitFor(() => findByMarker(svc.run.marker).some((p) => /nvidia-smi --query-gpu=/.test(p.cmdline)), { timeoutMs: 60_000, message: 'nvidia-smi running' });
    // A SIGHUP here (a closing terminal, a key reload) must not end llmserve by Node's default action.
    svc.run.child.kill('SIGHUP');
    const signalled = Date.now();
    svc.run.child.kill(signal);
    const { code, signal: bySignal } = await svc.run.exited;
    // The query ignores SIGTERM (stuck in the driver): it gets SIGKILL at once, and llmserve waits at most 2 s. Kept at
    // 10 s: the bug, a wait for the query, ends only with the query's own 15 s timeout.
    assert.ok(Date.now() - signalled < 10_000, `exited ${Date.now() - signalled} ms after the signal`);
    assert.equal(bySignal, null, `ended by ${String(bySignal)}, not by its own exit\n${svc.run.output()}`);
    assert.equal(code, 0, svc.run.output());
    assert.match(svc.run.output(), new RegExp(`${signal} received during start-up: stopping before anything is started`));
    assert.ok(svc.probesDown(), 'both probe files at exit');
    assert.deepEqual(findByMarker(svc.run.marker), [], 'the nvidia-smi query must not outlive llmserve');
  });
}

test('SIGTERM during the first load with a drain.delay: nothing to drain yet, stops at once', async (t) => {
  const svc = await startService({ config: 'drain: { delay: 30, timeout: 30 }\n', env: { FAKE_VLLM_LOAD_MS: '30000' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  // The whole chain up to EngineCore (llmserve, nvidia-smi, the proxy, vLLM's API server): a ceiling, not a wait.
  await svc.findProcess(/^VLLM::EngineCore/, 60_000);
  const started = Date.now();
  svc.run.child.kill('SIGTERM');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  // A stop is a few process exits (vLLM's group, the proxy within --stop-timeout 3 s); the bug waits the 30 s delay.
  assert.ok(Date.now() - started < 20_000, `stopped ${Date.now() - started} ms after SIGTERM, not after the 30 s drain delay`);
  // The log says so: no "draining" that never runs.
  assert.match(svc.run.output(), /SIGTERM received during start-up: stopping without waiting for the load \(nothing served yet: no drain\)/);
  assert.doesNotMatch(svc.run.output(), /draining/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('SIGTERM during start-up: no waiting for the load, orphaned workers killed with the group, exit 0', async (t) => {
  // A 60 s load: the whole start-up chain may take most of the wait below on a loaded machine, and a stop that waited
  // for the load (the bug) would take the best part of a minute, not seconds. The test does not wait for it.
  const svc = await startService({ env: { FAKE_VLLM_LOAD_MS: '60000' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  // Wait until vLLM's tree exists (TP 2: EngineCore and two workers), then stop while it is still loading.
  const workers = await waitFor(() => {
    const found = findByMarker(svc.run.marker).filter((p) => p.cmdline.startsWith('VLLM::Worker_TP'));
    return found.length === 2 ? found : undefined;
  }, { timeoutMs: 60_000, message: 'two TP workers' });
  const started = Date.now();
  svc.run.child.kill('SIGTERM');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  assert.ok(Date.now() - started < 15_000, `stopped in ${Date.now() - started} ms`);
  assert.ok(svc.probesDown());
  for (const w of workers) assert.equal(isAlive(w.pid), false, `worker ${w.cmdline} must be gone`);
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('SIGTERM as soon as the proxy process exists: no drain wait, exit 0, nothing left', async (t) => {
  const svc = await startService({ env: { FAKE_VLLM_LOAD_MS: '30000' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.findProcess(/llmserve\.js proxy$/, 60_000);
  const started = Date.now();
  svc.run.child.kill('SIGTERM');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  // A proxy still starting gets --stop-timeout (3 s), then SIGKILL; the bug, a drain it never answers, waits out
  // drain.timeout (30 s).
  assert.ok(Date.now() - started < 20_000, `stopped in ${Date.now() - started} ms`);
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('--shutdown-timeout is passed below the stop timeout, unless the user set one', async (t) => {
  const svc = await startService({ stopTimeout: '12' });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  assert.ok(svc.vllmStarts()[0]!.argv.includes('--shutdown-timeout=7'), JSON.stringify(svc.vllmStarts()[0]!.argv));
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0);

  const own = await startService({ stopTimeout: '12', vllmArgs: ['--shutdown-timeout', '2'] });
  t.after(async () => assert.equal(await own.run.cleanup(), 0));
  await own.waitReady();
  const argv = own.vllmStarts()[0]!.argv;
  assert.deepEqual(argv.filter((a) => a.startsWith('--shutdown')), ['--shutdown-timeout']);
  assert.equal(argv[argv.indexOf('--shutdown-timeout') + 1], '2');
  own.run.child.kill('SIGTERM');
  assert.equal((await own.run.exited).code, 0);
});

test('an older vLLM rejects --shutdown-timeout and --disable-log-requests: dropped with warnings, retried at once, remembered for restarts', async (t) => {
  const svc = await startService({ config: FAST_RESTART, vllmArgs: ['--disable-log-requests'], env: { FAKE_VLLM_NO_SHUTDOWN_TIMEOUT: '1' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  // One more vLLM start than usual (the rejected one) in the chain: a ceiling, not a wait.
  await svc.waitReady(90_000);
  // The rejected start fails in argparse, before the fake records itself: only the retry is in the log.
  assert.match(svc.run.output(), /vLLM command: .*--disable-log-requests --shutdown-timeout=1\b/);
  assert.match(svc.run.output(), /unrecognized arguments: --disable-log-requests --shutdown-timeout=1/);
  const [second] = svc.vllmStarts();
  assert.ok(!second!.argv.includes('--disable-log-requests') && !second!.argv.some((a) => a.startsWith('--shutdown-timeout')), JSON.stringify(second!.argv));
  assert.match(svc.run.output(), /warning: the installed vLLM does not accept --shutdown-timeout .*retrying without it/);
  assert.match(svc.run.output(), /warning: the installed vLLM no longer accepts --disable-log-requests .*retrying without it/);
  // A restart uses the corrected command line at once (no third rejected start).
  const engine = await svc.findProcess(/^VLLM::EngineCore/);
  process.kill(engine.pid, 'SIGKILL');
  await waitFor(() => svc.vllmStarts().length === 2, { timeoutMs: 60_000, message: 'a restarted vLLM' });
  assert.deepEqual(svc.vllmStarts()[1]!.argv, second!.argv);
  assert.equal(svc.run.lines.filter((l) => l.includes('unrecognized arguments')).length, 1, 'no second rejected start');
  await waitFor(() => !svc.probesDown() && svc.run.lines.some((l) => l.includes('healthy again')), { timeoutMs: 60_000, message: 'healthy again' });
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('any other unrecognized argument is fatal: diagnosis, exit 3, not retried', async (t) => {
  const svc = await startService({ vllmArgs: ['--no-such-flag'] });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  assert.equal((await svc.run.exited).code, 3, svc.run.output());
  assert.match(svc.run.output(), /diagnosis: vLLM rejected unknown arguments: --no-such-flag/);
  assert.equal(svc.vllmStarts().length, 0, 'argparse failed before the fake recorded a start');
  assert.ok(svc.probesDown());
});

test('an inherited VLLM_API_KEY does not reach vLLM: it becomes ready and answers through the proxy', async (t) => {
  // With VLLM_API_KEY set vLLM guards /v1 itself (api_server.py build_app); the proxy sends no key upstream.
  const svc = await startService({ env: { VLLM_API_KEY: 'sk-legacy-vllm-key' }, args: ['--startup-timeout', '60'] });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  const env = (svc.vllmStarts()[0] as unknown as { env: Record<string, string> }).env;
  assert.equal(env.VLLM_API_KEY, undefined);
  assert.equal((await svc.chat()).status, 200);
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
});

test('vLLM with an API key of its own (a vllm.command wrapper, or api-key in its --config file): exit 2 at its first 401, not the start-up timeout', async (t) => {
  // A wrapper that turns vLLM's own auth on, as an `api-key:` in a vLLM --config file does (vLLM pulls the file's keys
  // onto its command line). Before, every readiness check got 401 until the start-up timeout (here 60 s), exit 3.
  const dir = await tempDir('llmserve-wrap-');
  const wrapper = path.join(dir, 'vllm-with-key');
  writeFileSync(wrapper, `#!/bin/sh\nVLLM_API_KEY=sk-vllm-own-0123456789 exec vllm serve "$@"\n`, { mode: 0o755 });
  const svc = await startService({ config: `vllm:\n  command: [${wrapper}]\n`, args: ['--startup-timeout', '60'] });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  const { code } = await svc.run.exited;
  assert.equal(code, 2, svc.run.output());
  assert.match(svc.run.output(), /vLLM answered 401 to llmserve's readiness check: vLLM's own API key is on/);
  assert.match(svc.run.output(), /Fix: remove api-key from vLLM's config file/);
  assert.ok(svc.probesDown());
});

/** A second start on `first`'s probe directory, which must be refused (exit 2) naming the running one. */
async function assertSecondStartRefused(t: { after: (fn: () => unknown) => void }, first: Service): Promise<void> {
  const model = await makeModelDir();
  const [port, backendPort] = [await freePort(), await freePort()];
  const second = runLlmserve(['start', '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', first.probeDir], { LLMSERVE_MASTER_KEY: TEST_KEY });
  t.after(async () => assert.equal(await second.cleanup(), 0));
  const stillRuns = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the second start still runs:\n${second.output()}`)), 60_000).unref());
  assert.equal((await Promise.race([second.exited, stillRuns])).code, 2, second.output());
  assert.match(second.output(), new RegExp(`the probe directory ${first.probeDir} belongs to a running llmserve \\(pid ${first.run.child.pid}, started .*, proxy on port ${first.port}\\)`));
  assert.match(second.output(), /Fix: stop that one first, or give this one a probe directory of its own with --probe-dir DIR/);
}

test('a second start on a running one\'s probe directory: exit 2 before touching its probe files; the first serves on', async (t) => {
  const first = await startService();
  t.after(async () => assert.equal(await first.run.cleanup(), 0, 'no process may be left behind'));
  await first.waitReady();
  await assertSecondStartRefused(t, first);
  // The running service still says ready and healthy.
  assert.equal(existsSync(first.notReady), false);
  assert.equal(existsSync(first.notHealthy), false);
  assert.equal((await first.chat()).status, 200);
  first.run.child.kill('SIGTERM');
  assert.equal((await first.run.exited).code, 0, first.run.output());
});

test('the probe directory removed while serving (a /tmp cleaner): llmserve.json is written again at the next health tick, and a second start is still refused', async (t) => {
  const first = await startService();
  t.after(async () => assert.equal(await first.run.cleanup(), 0, 'no process may be left behind'));
  await first.waitReady();
  rmSync(first.probeDir, { recursive: true, force: true });
  const runtimeFile = path.join(first.probeDir, 'llmserve.json');
  await waitForFile(runtimeFile, true, 10_000);
  assert.equal((JSON.parse(readFileSync(runtimeFile, 'utf8')) as { pid: number }).pid, first.run.child.pid);
  await first.run.waitForLine(/llmserve\.json in .* was gone \(the directory removed\?\): written again/, 5000);
  await assertSecondStartRefused(t, first);
  // Ready and healthy all along: no probe file came back with the directory.
  assert.equal(existsSync(first.notReady), false);
  assert.equal(existsSync(first.notHealthy), false);
  first.run.child.kill('SIGTERM');
  assert.equal((await first.run.exited).code, 0, first.run.output());
});
