// Stopping (issue 5 items 3 and 4): drain with a stream in flight, drain.delay, vLLM ignoring SIGTERM, a second
// SIGTERM, llmserve SIGKILLed (its orphan guard stops vLLM and the proxy), an uncaught error, and the
// output going away (a closed terminal or pipe).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fixturePath, tempDir } from '../helpers/fixtures.js';
import { proxyFault, startService, TEST_KEY } from '../helpers/service.js';
import { findByMarker, isAlive, processGroupMembers } from '../helpers/procs.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

test('SIGTERM with a stream in flight: new requests get 503, the stream ends with [DONE], exit 0, nothing left', async (t) => {
  const svc = await startService({
    // An 8 s stream: the 503 below must be seen while it still flows (once it ends the drain is over and the proxy
    // closes), and on a loaded machine the signal, the probe files and the proxy's drain message can take seconds.
    config: 'drain: { timeout: 30 }\n',
    env: { FAKE_VLLM_STREAM_CHUNKS: '160', FAKE_VLLM_STREAM_INTERVAL_MS: '50' },
  });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const res = await svc.chat({ stream: true });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value);
  const signalled = Date.now();
  svc.run.child.kill('SIGTERM');
  // not-ready and not-healthy come first, then the proxy refuses new requests while the stream goes on.
  await waitForFile(svc.notHealthy, true, 30_000);
  const refused = await waitFor(async () => {
    const r = await svc.chat();
    return r.status === 503 ? r : undefined;
  }, { timeoutMs: 20_000, message: 'a 503 for a new request during the drain' });
  assert.ok(refused.headers.get('retry-after'));
  // fetch keeps connections alive, as OpenAI's SDKs do: the 503 closes it, so the SDK's own retry reconnects.
  assert.equal(refused.headers.get('connection'), 'close');
  assert.match(await refused.text(), /shutting down/);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  assert.match(text, /data: \[DONE\]\n\n$/, 'the stream completed');
  assert.ok(Date.now() - signalled < 30_000, 'within the drain timeout');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  // A request sent before the proxy got the drain message may still be in flight too: at least the stream.
  assert.match(svc.run.output(), /draining: [1-9]\d* requests in flight/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('a stream that outlives drain.timeout is cut by the proxy: logged as 503 (the proxy cut it), not 499 (client left)', async (t) => {
  const svc = await startService({ config: 'drain: { timeout: 0.5 }\n', env: { FAKE_VLLM_STREAM_CHUNKS: '400', FAKE_VLLM_STREAM_INTERVAL_MS: '50' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  const res = await svc.chat({ stream: true });
  const body = res.text().catch(() => 'cut');
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  await body;
  const line = svc.run.lines.find((l) => /POST \/v1\/chat\/completions .* \d{3} \d+B/.test(l));
  assert.match(line ?? svc.run.output(), / 503 \d+B/);
  // The loss is said once, by the supervisor, with the setting that would have avoided it.
  assert.equal(svc.run.lines.filter((l) => /drain: 1 request still in flight after drain\.timeout \(0\.5 s\): stopping anyway, they are cut/.test(l)).length, 1, svc.run.output());
});

test('the output closes under llmserve (a closed terminal, a closed pipe): it drains and stops as on SIGTERM, exit 0', async (t) => {
  const logFile = path.join(await tempDir('llmserve-log-'), 'llmserve.log');
  const svc = await startService({ args: ['--log-file', logFile] });
  t.after(async () => {
    assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind');
    rmSync(path.dirname(logFile), { recursive: true, force: true });
  });
  await svc.waitReady();
  // Closing the reading end of llmserve's stdout, then a SIGHUP (what a closing terminal sends): the key reload's
  // log line makes sure some write fails (EPIPE here, EIO on a closed terminal). It need not be the first one: a
  // line the proxy logs just after ready (its backend state) can be relayed between the two and fail first. Before,
  // that write killed llmserve with an uncaught error (exit 1, no drain, vLLM SIGKILLed, its runtime file left).
  svc.run.child.stdout!.destroy();
  svc.run.child.kill('SIGHUP');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /SIGHUP received: no proxy.keys_file to reload \(keys from the config and the environment are read at start only\)\n/);
  assert.match(log, /the output closed \(EPIPE\): draining and stopping\n/);
  assert.doesNotMatch(log, /internal error/);
  assert.ok(svc.probesDown());
  assert.equal(existsSync(path.join(svc.probeDir, 'llmserve.json')), false, 'the runtime file is removed on a clean stop');
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

/**
 * A ready service logging to a file with a stream of `seconds` in flight (what a second signal would cut), its
 * `drain.timeout` long enough for it; stopped and checked for leftovers at the test's end.
 */
async function streamInFlight(t: TestContext, seconds: number) {
  const logFile = path.join(await tempDir('llmserve-log-'), 'llmserve.log');
  const svc = await startService({ args: ['--log-file', logFile], config: 'drain: { timeout: 30 }\n', env: { FAKE_VLLM_STREAM_CHUNKS: String(seconds * 10), FAKE_VLLM_STREAM_INTERVAL_MS: '100' } });
  t.after(async () => {
    assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind');
    rmSync(path.dirname(logFile), { recursive: true, force: true });
  });
  await svc.waitReady();
  const stream = await svc.chat({ stream: true });
  return { svc, logFile, body: stream.text() };
}

test('the output closing during a drain is not a second SIGTERM: the stream in flight finishes, exit 0', async (t) => {
  // A 6 s stream: the drain line and the SIGHUP below must both come while it is in flight, on a loaded machine too.
  const { svc, logFile, body } = await streamInFlight(t, 6);
  svc.run.child.kill('SIGTERM');
  await svc.run.waitForLine(/draining: 1 request/, 30_000);
  // `llmserve start | tee log` stopped with Ctrl-C: tee goes too, and llmserve's next write fails (the SIGHUP's line).
  svc.run.child.stdout!.destroy();
  svc.run.child.kill('SIGHUP');
  assert.match(await body, /data: \[DONE\]/, 'the stream was cut');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /the output closed \(EPIPE\): already stopping\n/);
  assert.doesNotMatch(log, /again: killing everything now|second signal/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('a SIGTERM after the output closed is a first signal: the drain goes on and the stream in flight finishes', async (t) => {
  // A 10 s stream: the output's close, its drain line and the SIGTERM all come while it is in flight.
  const { svc, logFile, body } = await streamInFlight(t, 10);
  // The reader of llmserve's output goes first (a log shipper that died); the platform's SIGTERM comes after.
  svc.run.child.stdout!.destroy();
  svc.run.child.kill('SIGHUP');
  await waitFor(() => readFileSync(logFile, 'utf8').includes('the output closed (EPIPE): draining and stopping'), { timeoutMs: 30_000, message: 'the closed output to start the drain' });
  svc.run.child.kill('SIGTERM');
  // Before, that SIGTERM was taken for a second one: everything SIGKILLed at once, the stream cut.
  assert.match(await body, /data: \[DONE\]/, 'the stream was cut');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /SIGTERM received: already stopping \(send it again to kill at once\)\n/);
  assert.doesNotMatch(log, /again: killing everything now|second signal/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('drain.delay: requests are still served after SIGTERM for the delay (probe files already down), then 503', async (t) => {
  // An 8 s delay: within it this test sees the probe files, readiness turn 503 (IPC to the proxy's primary and
  // workers) and a request still answered, each a few steps on a loaded machine. A 16 s stream outlasts the delay, so
  // the drain is still open after it and its 503 phase can be observed.
  const svc = await startService({ config: 'drain: { delay: 8, timeout: 30 }\n', env: { FAKE_VLLM_STREAM_CHUNKS: '160', FAKE_VLLM_STREAM_INTERVAL_MS: '100' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  const stream = await svc.chat({ stream: true });
  const body = stream.text();
  svc.run.child.kill('SIGTERM');
  // Both files (llmserve writes them one after the other: this process may look between the two writes).
  await waitFor(() => svc.probesDown(), { timeoutMs: 30_000, message: 'both probe files after SIGTERM' });
  // HTTP probes (a load balancer's health check) must see what the probe files say, or the delay never removes it.
  // Within the delay: the request answered 200 after it proves that readiness failed before the delay ran out (after
  // it, the drain refuses new requests).
  const readiness = () => fetch(`http://127.0.0.1:${svc.port}/health/readiness`).then((r) => r.status);
  await waitFor(async () => (await readiness()) === 503, { timeoutMs: 6000, message: '/health/readiness 503 during the delay' });
  assert.equal((await svc.chat()).status, 200, 'served during the delay');
  await waitFor(async () => (await svc.chat()).status === 503, { timeoutMs: 30_000, message: 'a 503 after the delay' });
  assert.match(await body, /data: \[DONE\]\n\n$/);
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('SIGTERM while the service is being marked ready (not-ready still there): no drain.delay, since the platform never routed here', async (t) => {
  // vLLM in mode busy: its /health answers 10 s late, so the proxy's readiness does not pass and the supervisor
  // waits 5 s for it, with not-ready still there, while the proxy already forwards.
  const svc = await startService({ config: 'drain: { delay: 30, timeout: 10 }\n', env: { FAKE_VLLM_MODE: 'busy' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await waitFor(async () => (await svc.chat().catch(() => null))?.status === 200, { timeoutMs: 60_000, intervalMs: 20, message: 'the proxy forwarding' });
  assert.ok(existsSync(svc.notReady), 'not-ready is still there');
  const signalled = Date.now();
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  assert.ok(Date.now() - signalled < 20_000, `stopped ${Date.now() - signalled} ms after SIGTERM (drain.delay is 30 s)`);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('the proxy dies during the drain: said, with the requests it had cut; vLLM still stopped, exit 0, nothing left', async (t) => {
  const { env } = await proxyFault('die-on-drain');
  const svc = await startService({ env: { ...env, FAKE_VLLM_STREAM_CHUNKS: '100', FAKE_VLLM_STREAM_INTERVAL_MS: '100' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  const stream = await svc.chat({ stream: true });
  const body = stream.text().catch((err: Error) => `cut: ${err.message}`);
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  assert.match(svc.run.output(), /error: the proxy exited during the drain \(signal SIGKILL\): the requests it still had in flight were cut/);
  assert.doesNotMatch(await body, /data: \[DONE\]/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('vLLM ignores SIGTERM: its group is SIGKILLed after --stop-timeout, exit 0, nothing left', async (t) => {
  const svc = await startService({ stopTimeout: '1', env: { FAKE_VLLM_MODE: 'ignore-sigterm' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  const api = svc.vllmStarts()[0]!.pid;
  const tree = processGroupMembers(api);
  const signalled = Date.now();
  svc.run.child.kill('SIGTERM');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  assert.ok(Date.now() - signalled >= 1000, 'waited the stop timeout first');
  assert.match(svc.run.output(), /Received SIGTERM; ignoring it/);
  assert.match(svc.run.output(), /vLLM did not exit within 1 s of SIGTERM: killed its process group/);
  for (const p of tree) assert.equal(isAlive(p.pid), false, `${p.cmdline} must be gone`);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('a second SIGTERM skips the grace period: killed at once, exit 0, nothing left', async (t) => {
  const svc = await startService({ stopTimeout: '60', env: { FAKE_VLLM_MODE: 'ignore-sigterm' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  svc.run.child.kill('SIGTERM');
  await svc.run.waitForLine(/Received SIGTERM; ignoring it/, 30_000);
  const again = Date.now();
  svc.run.child.kill('SIGTERM');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  assert.ok(Date.now() - again < 30_000, `killed in ${Date.now() - again} ms, not after the 60 s stop timeout`);
  assert.match(svc.run.output(), /SIGTERM again: killing everything now/);
  // The log says what happened: a kill on request, not a stop timeout that never ran out.
  assert.match(svc.run.output(), /vLLM: killed its process group at once \(second signal\)/);
  assert.doesNotMatch(svc.run.output(), /did not exit within/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('a second SIGTERM during the drain delay: no grace period either, killed at once, exit 0, nothing left', async (t) => {
  const svc = await startService({ stopTimeout: '60', config: 'drain: { delay: 60, timeout: 60 }\n', env: { FAKE_VLLM_MODE: 'ignore-sigterm' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  svc.run.child.kill('SIGTERM');
  await svc.run.waitForLine(/SIGTERM received: draining and stopping/, 30_000);
  const again = Date.now();
  svc.run.child.kill('SIGTERM');
  const { code } = await svc.run.exited;
  assert.equal(code, 0, svc.run.output());
  // Neither the 60 s drain delay nor the 60 s stop timeout: vLLM (which ignores SIGTERM) is SIGKILLed at once.
  assert.ok(Date.now() - again < 30_000, `stopped ${Date.now() - again} ms after the second SIGTERM`);
  assert.match(svc.run.output(), /vLLM: killed its process group at once \(second signal\)/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('llmserve SIGKILLed: the orphan guard marks the probe files down and stops vLLM with SIGTERM; nothing is left', async (t) => {
  // A stop timeout of 60 s: a tree gone within seconds was stopped by its SIGTERM, not by the SIGKILL at the end.
  const svc = await startService({ stopTimeout: '60' });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const proxy = await svc.findProcess(/llmserve\.js proxy$/);
  const guard = await svc.findProcess(/^\/bin\/sh -c [\s\S]* llmserve-orphan-guard 600 \//);
  // It gets vLLM's environment: no key.
  assert.doesNotMatch(readFileSync(`/proc/${guard.pid}/environ`, 'utf8'), new RegExp(TEST_KEY));
  const tree = processGroupMembers(svc.vllmStarts()[0]!.pid);
  assert.ok(tree.length >= 2, 'the API server and its engine');
  assert.equal(svc.probesDown(), false);
  svc.run.child.kill('SIGKILL');
  await svc.run.exited;
  // The platform hears of it: both probe files, as at every exit of llmserve.
  await waitFor(() => svc.probesDown(), { timeoutMs: 30_000, message: 'both probe files after llmserve was SIGKILLed' });
  // Within 30 s: the guard's SIGKILL, without its SIGTERM first, would come only after the 60 s stop timeout.
  await waitFor(() => findByMarker(svc.run.marker).length === 0, {
    timeoutMs: 30_000,
    message: () => `vLLM, the proxy and the guard gone; left: ${findByMarker(svc.run.marker).map((p) => p.cmdline).join('; ')}`,
  });
  for (const p of [...tree, proxy, guard]) assert.equal(isAlive(p.pid), false, `${p.cmdline} must be gone`);
});

test('llmserve SIGKILLed while vLLM ignores SIGTERM: the guard SIGKILLs vLLM\'s group after the stop timeout', async (t) => {
  const svc = await startService({ stopTimeout: '1', env: { FAKE_VLLM_MODE: 'ignore-sigterm' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const api = svc.vllmStarts()[0]!.pid;
  const tree = processGroupMembers(api);
  const killed = Date.now();
  svc.run.child.kill('SIGKILL');
  await svc.run.exited;
  await waitFor(() => tree.every((p) => !isAlive(p.pid)), { timeoutMs: 30_000, message: 'vLLM\'s group SIGKILLed by the guard' });
  assert.ok(Date.now() - killed >= 1000, `the guard gave vLLM its stop timeout first (gone after ${Date.now() - killed} ms)`);
  await waitFor(() => findByMarker(svc.run.marker).length === 0, { timeoutMs: 30_000, message: 'nothing left' });
});

test('an orderly stop leaves no orphan guard behind', async (t) => {
  const svc = await startService();
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const guard = await svc.findProcess(/llmserve-orphan-guard/);
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
  // llmserve waits for the guard to exit before it does.
  assert.equal(isAlive(guard.pid), false);
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('llmserve dies of an uncaught error: vLLM\'s group and the proxy die with it, both probe files, exit 1', async (t) => {
  // The hook (loaded into llmserve through NODE_OPTIONS) throws from a timer once the service is ready.
  const svc = await startService({ env: { NODE_OPTIONS: `--import=${fixturePath('crash-when-ready.mjs')}`, LLMSERVE_TEST_CRASH_WHEN_READY: '1' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  const { code } = await svc.run.exited;
  assert.equal(code, 1, svc.run.output());
  assert.match(svc.run.output(), /internal error: Error: injected crash \(test hook\)/);
  assert.equal(svc.vllmStarts().length, 1);
  assert.ok(svc.probesDown());
  // SIGKILL of the groups is synchronous, but the kernel reaps the orphans a moment later.
  await waitFor(() => findByMarker(svc.run.marker).length === 0, { timeoutMs: 3000, message: 'vLLM and the proxy gone' });
});
