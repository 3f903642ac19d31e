// Logs: with --log-format json every line on stdout and stderr is one JSON object; --log-file gets every line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../helpers/ports.js';
import { makeModelDir, tempDir } from '../helpers/fixtures.js';
import { runLlmserve } from '../helpers/llmserve.js';

const KEY = 'sk-logs-e2e-0123456789abcdef';

test('--log-format json: every line of start (llmserve, vllm, proxy, access log, a failure) is one JSON object', async (t) => {
  const dir = await tempDir();
  const probeDir = path.join(dir, 'probe');
  const logFile = path.join(dir, 'all.log');
  const port = await freePort();
  const model = await makeModelDir();
  const run = runLlmserve(
    ['start', '--model', model, '--port', String(port), '--backend-port', String(await freePort()), '--probe-dir', probeDir, '--log-format', 'json', '--log-file', logFile, '--health-interval', '0.3'],
    { LLMSERVE_MASTER_KEY: KEY },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/ready after .* serves/, 20_000);
  assert.equal(existsSync(path.join(probeDir, 'not-ready')), false);
  const ok = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: path.basename(model), messages: [{ role: 'user', content: 'hi' }] }),
  }).catch((err: Error & { cause?: unknown }) => {
    throw new Error(`fetch: ${String(err.cause)}\n${run.output()}`);
  });
  assert.equal(ok.status, 200, await ok.text());
  const denied = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: 'Bearer wrong' } });
  assert.equal(denied.status, 401);
  await run.waitForLine(/"status":401/, 5000);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());

  const sources = new Set<string>();
  for (const line of run.lines.filter((l) => l.length > 0)) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`not JSON: ${line}`);
    }
    for (const field of ['time', 'level', 'source', 'msg']) assert.ok(field in parsed, `${field} missing in ${line}`);
    sources.add(String(parsed.source));
  }
  assert.deepEqual([...sources].sort(), ['llmserve', 'proxy', 'vllm']);
  assert.ok(!run.output().includes(KEY), 'keys are redacted everywhere');

  assert.ok(existsSync(logFile));
  const file = readFileSync(logFile, 'utf8').trim().split('\n');
  assert.ok(file.length >= run.lines.filter((l) => l.length > 0 && !l.includes('"source":"proxy"')).length, 'the log file has every line of llmserve and vLLM');
  for (const line of file) JSON.parse(line);
  assert.ok(!file.join('\n').includes(KEY));
});

test('--log-format json: a vLLM that fails while loading prints its traceback as JSON lines too', async (t) => {
  const dir = await tempDir();
  const run = runLlmserve(
    ['start', '--model', await makeModelDir(), '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--log-format', 'json'],
    { LLMSERVE_MASTER_KEY: KEY, FAKE_VLLM_MODE: 'fail-load' },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0));
  assert.equal((await run.exited).code, 3, run.output());
  const parsed = run.lines.filter((l) => l.length > 0).map((l) => JSON.parse(l) as { source: string; msg: string; level: string });
  assert.ok(parsed.some((p) => p.source === 'vllm' && p.msg.includes('CUDA out of memory')));
  assert.ok(parsed.some((p) => p.level === 'error' && /vLLM exited during start-up/.test(p.msg)));
});
