// `llmserve start` end to end: the built bin, the fake vLLM and a 2-GPU fake nvidia-smi, an unchanged LiteLLM config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../helpers/ports.js';
import { makeModelDir, tempDir, LITELLM_CONFIG } from '../helpers/fixtures.js';
import { findByMarker, isAlive, listProcesses } from '../helpers/procs.js';
import { runLlmserve } from '../helpers/llmserve.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

const KEY = 'your-master-key-here';

async function post(port: number, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

test('the original LiteLLM config, unchanged: probe files, vLLM argv, auth, engine death, SIGTERM', async (t) => {
  const dir = await tempDir();
  const config = path.join(dir, 'litellm.config.yaml');
  writeFileSync(config, LITELLM_CONFIG);
  const model = await makeModelDir();
  const probeDir = path.join(dir, 'probe');
  const argvFile = path.join(dir, 'vllm-argv.jsonl');
  const [port, backendPort] = [await freePort(), await freePort()];
  const run = runLlmserve(
    ['start', '--config', config, '--model', model, '--port', String(port), '--probe-dir', probeDir, '--backend-port', String(backendPort), '--health-interval', '0.5'],
    { FAKE_VLLM_ARGV_FILE: argvFile, FAKE_VLLM_LOAD_MS: '600', FAKE_NVIDIA_SMI_GPUS: '2' },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0, 'no process may be left behind'));

  await waitForFile(path.join(probeDir, 'not-ready'), true, 30_000);
  await waitForFile(path.join(probeDir, 'not-ready'), false, 60_000);
  // not-healthy goes right after not-ready (two unlinks): the ready line comes after both.
  await run.waitForLine(/\| ready after/, 30_000);
  assert.equal(existsSync(path.join(probeDir, 'not-healthy')), false);

  const started = JSON.parse(readFileSync(argvFile, 'utf8').trim().split('\n')[0]!) as { argv: string[]; env: Record<string, string> };
  assert.deepEqual(started.argv.slice(0, 10), ['serve', model, '--served-model-name', 'DeepSeek-R1-Distill-Qwen-1.5B', '--host', '127.0.0.1', '--port', String(backendPort), '--tensor-parallel-size', '2']);
  assert.equal(started.env.PYTORCH_CUDA_ALLOC_CONF, 'expandable_segments:True');
  assert.equal(started.env.CUDA_DEVICE_ORDER, 'PCI_BUS_ID');
  assert.ok(!JSON.stringify(started.env).includes(KEY), 'the key must not reach vLLM');

  const ok = await post(port, { model: 'DeepSeek-R1-Distill-Qwen-1.5B', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` });
  assert.equal(ok.status, 200, ok.body);
  assert.equal((JSON.parse(ok.body) as { object: string }).object, 'chat.completion');
  // One id end to end: the client's X-Request-Id names vLLM's completion (chatcmpl-ID) and comes back.
  const traced = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'x-request-id': 'trace-42' },
    body: JSON.stringify({ model: 'DeepSeek-R1-Distill-Qwen-1.5B', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(traced.headers.get('x-request-id'), 'trace-42');
  assert.equal(((await traced.json()) as { id: string }).id, 'chatcmpl-trace-42');
  for (const headers of [{}, { authorization: 'Bearer wrong-key' }] as Record<string, string>[]) {
    const denied = await post(port, { model: 'DeepSeek-R1-Distill-Qwen-1.5B', messages: [] }, headers);
    assert.equal(denied.status, 401);
    assert.equal((JSON.parse(denied.body) as { error: { code: string } }).error.code, 'invalid_api_key');
  }

  // The key is on no command line of anything we started, and in no log line.
  for (const p of findByMarker(run.marker)) assert.ok(!p.cmdline.includes(KEY), `key in argv of ${p.cmdline}`);
  for (const p of listProcesses()) assert.ok(!p.cmdline.includes(KEY));

  // Kill the engine: not-healthy (within about one health interval; how soon is the benchmark's figure, this deadline
  // is only a ceiling for a loaded machine, and not-healthy stays for the 1 s restart backoff at least).
  const engine = await waitFor(() => findByMarker(run.marker).find((p) => p.cmdline.startsWith('VLLM::EngineCore')), { timeoutMs: 30_000, message: 'EngineCore process' });
  process.kill(engine.pid, 'SIGKILL');
  await waitForFile(path.join(probeDir, 'not-healthy'), true, 30_000);
  // Then the restart policy brings a new vLLM back and removes not-healthy; the old engine is gone.
  await waitForFile(path.join(probeDir, 'not-healthy'), false, 60_000);
  assert.equal(isAlive(engine.pid), false);
  const again = await post(port, { model: 'DeepSeek-R1-Distill-Qwen-1.5B', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` });
  assert.equal(again.status, 200, again.body);

  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  assert.equal(code, 0, run.output());
  assert.ok(existsSync(path.join(probeDir, 'not-ready')));
  assert.ok(existsSync(path.join(probeDir, 'not-healthy')));
  assert.deepEqual(findByMarker(run.marker).map((p) => p.cmdline), [], 'nothing of vLLM (API server or engine) or the proxy is left');
  assert.ok(!run.output().includes(KEY), 'the key appears in no log line');
});

test('vLLM that fails while loading: its last lines, exit 3, nothing left, probe files present', async (t) => {
  const dir = await tempDir();
  const model = await makeModelDir();
  const probeDir = path.join(dir, 'probe');
  const run = runLlmserve(['start', '--model', model, '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', probeDir], {
    LLMSERVE_MASTER_KEY: 'sk-e2e-0123456789abcdef',
    FAKE_VLLM_MODE: 'fail-load',
  });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  const { code } = await run.exited;
  assert.equal(code, 3, run.output());
  assert.match(run.output(), /CUDA out of memory/);
  assert.match(run.output(), /diagnosis: out of GPU memory/);
  assert.ok(existsSync(path.join(probeDir, 'not-ready')));
  assert.ok(existsSync(path.join(probeDir, 'not-healthy')));
  assert.equal(findByMarker(run.marker).length, 0);
});
