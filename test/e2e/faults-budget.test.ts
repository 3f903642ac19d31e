// The restart budget (issue 5 item 1): backoff, the Nth failure within the window gives up with both probe files
// and exit 1 so the platform replaces the container; `restart: never` gives up at the first failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { errorLines, startService } from '../helpers/service.js';
import { findByMarker } from '../helpers/procs.js';

test('vLLM keeps dying after it was ready (exit 0 each time): the 3rd failure gives up, exit 1, nothing left', async (t) => {
  const svc = await startService({
    config: 'restart: { max_failures: 3, window: 60, backoff_initial: 0.1, backoff_max: 0.2 }\n',
    // 3 s after its first /v1/models answer: after llmserve has told the proxy it is ready, however loaded the
    // machine (the proxy's liveness answer and every worker's state confirmation come between).
    env: { FAKE_VLLM_MODE: 'exit-after-ready', FAKE_VLLM_EXIT_AFTER_MS: '3000' },
  });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  const { code } = await svc.run.exited;
  assert.equal(code, 1, svc.run.output());
  assert.equal(svc.vllmStarts().length, 3, 'two restarts, then the budget is spent');
  assert.match(svc.run.output(), /restarting vLLM in 0\.1 s \(failure 1 within 60 s; the 3rd gives up\)/);
  assert.match(svc.run.output(), /restarting vLLM in 0\.2 s \(failure 2 within 60 s; the 3rd gives up\)/);
  assert.match(errorLines(svc.run).join('\n'), /vLLM failed 3 times within 60 s: giving up/);
  // The proxy is told (and says) `restarting` for the two failures that are restarted, `failed` for the third.
  assert.equal(svc.run.lines.filter((l) => /backend state: ready -> restarting$/.test(l)).length, 2, svc.run.output());
  assert.match(svc.run.output(), /backend state: ready -> failed$/m);
  for (const start of svc.vllmStarts().slice(1)) assert.deepEqual(start.otherVllmPids, [], 'old tree gone before each restart');
  assert.ok(svc.probesDown(), 'both probe files: the platform replaces the container');
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('a restarted vLLM that fails while loading counts as one failure each: the budget runs out, exit 1', async (t) => {
  const svc = await startService({ config: 'restart: { max_failures: 3, window: 60, backoff_initial: 0.1, backoff_max: 0.2 }\n' });
  const modeFile = path.join(svc.dir, 'fake-vllm-mode');
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  writeFileSync(modeFile, 'fail-load\n');
  const engine = await svc.findProcess(/^VLLM::EngineCore/);
  process.kill(engine.pid, 'SIGKILL');
  const { code } = await svc.run.exited;
  assert.equal(code, 1, svc.run.output());
  assert.equal(svc.vllmStarts().length, 3, 'the first vLLM and two restarts that failed while loading');
  assert.equal(svc.run.lines.filter((l) => /vLLM exited during start-up \(exit code 1\): out of GPU memory/.test(l)).length, 2, svc.run.output());
  // Only the engine's death was unexpected: a restart that failed while loading is told once, by the line above.
  assert.equal(svc.run.lines.filter((l) => /exited unexpectedly/.test(l)).length, 1, svc.run.output());
  assert.match(errorLines(svc.run).join('\n'), /vLLM failed 3 times within 60 s: giving up/);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('restart: never gives up at the first unrequested exit: exit 1, both probe files, nothing left', async (t) => {
  const svc = await startService({ config: 'restart: never\n', env: { FAKE_VLLM_MODE: 'exit-after-ready', FAKE_VLLM_EXIT_AFTER_MS: '3000' } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  const { code } = await svc.run.exited;
  assert.equal(code, 1, svc.run.output());
  assert.equal(svc.vllmStarts().length, 1);
  assert.match(errorLines(svc.run).join('\n'), /restart policy is "never": giving up/);
  // Nothing restarts: the proxy's line says so too (it answers "stopped", without Retry-After, until it goes).
  assert.doesNotMatch(svc.run.output(), /-> restarting/);
  assert.match(svc.run.output(), /backend state: ready -> failed$/m);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});

test('the proxy keeps crashing: its own budget runs out, exit 1, vLLM was never restarted', async (t) => {
  const svc = await startService({ config: 'restart: { max_failures: 2, backoff_initial: 0.1, backoff_max: 0.1 }\n' });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  await svc.waitReady();
  for (let i = 0; i < 2; i++) {
    // The proxy itself: killing one of its workers would only have it replaced, and the proxy never exit.
    const proxy = await svc.findProxy();
    process.kill(proxy.pid, 'SIGKILL');
    if (i === 0) await svc.run.waitForLine(/restarting only the proxy/, 30_000);
    if (i === 0) await svc.run.waitForLine(/healthy again/, 60_000);
  }
  const { code } = await svc.run.exited;
  assert.equal(code, 1, svc.run.output());
  // The last failure's cause is in the line that explains the exit code.
  assert.match(errorLines(svc.run).join('\n'), /the proxy exited \(signal SIGKILL\); the proxy failed 2 times: giving up/);
  assert.doesNotMatch(svc.run.output(), /proxy health check failed/);
  assert.equal(svc.vllmStarts().length, 1);
  assert.ok(svc.probesDown());
  assert.deepEqual(findByMarker(svc.run.marker), []);
});
