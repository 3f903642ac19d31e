// A browser client through llmserve: the CORS pre-flight reaches vLLM without a key, and vLLM's own policy answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeModelDir, tempDir } from '../helpers/fixtures.js';
import { runLlmserve } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { startService, TEST_KEY } from '../helpers/service.js';

/** A browser's pre-flight for a POST with a key and a JSON body. */
function preflight(port: number, origin: string, path = '/v1/chat/completions'): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
}

test('CORS: vLLM\'s default (every origin) answers the pre-flight through llmserve, and the call then carries its header', async (t) => {
  const svc = await startService();
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const pre = await preflight(svc.port, 'https://app.example');
  assert.equal(pre.status, 200, await pre.clone().text());
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
  assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type');
  // The call itself still needs the key; its answer carries vLLM's header, so the browser hands it to the page.
  const res = await fetch(`http://127.0.0.1:${svc.port}/v1/chat/completions`, {
    method: 'POST',
    headers: { origin: 'https://app.example', 'content-type': 'application/json', authorization: `Bearer ${TEST_KEY}` },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  await res.text();
  // An answer of llmserve's own (a wrong key) carries it too: the page can show the 401.
  const denied = await fetch(`http://127.0.0.1:${svc.port}/v1/models`, { headers: { origin: 'https://app.example', authorization: 'Bearer sk-wrong-0123456789abcdef' } });
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get('access-control-allow-origin'), '*');
  await denied.text();
  // LiteLLM's path without /v1, as its users' base URLs have it.
  assert.equal((await preflight(svc.port, 'https://app.example', '/chat/completions')).status, 200);
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
});

test('CORS: vLLM\'s --allowed-origins is the policy: another origin\'s pre-flight is refused by vLLM', async (t) => {
  const svc = await startService({ vllmArgs: ['--allowed-origins', '["https://app.example"]'] });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  const ok = await preflight(svc.port, 'https://app.example');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await preflight(svc.port, 'https://evil.example');
  assert.equal(other.status, 400);
  assert.equal(await other.text(), 'Disallowed CORS origin');
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  // llmserve's own answers follow the same list.
  for (const [origin, allowed] of [['https://app.example', 'https://app.example'], ['https://evil.example', null]] as const) {
    const denied = await fetch(`http://127.0.0.1:${svc.port}/v1/models`, { headers: { origin } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), allowed, origin);
    await denied.text();
  }
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
});

test('CORS with several models: each model\'s answers follow its own vLLM\'s --allowed-origins, not the first model\'s', async (t) => {
  const dir = await tempDir('llmserve-cors-');
  const [a, b] = [await makeModelDir(), await makeModelDir()];
  const [port, portA, portB] = [await freePort(), await freePort(), await freePort()];
  const config = path.join(dir, 'llmserve.yaml');
  const entry = (model: string, name: string, gpus: string, p: number, origin: string) =>
    `  - model: ${model}\n    served_model_name: ${name}\n    gpus: ${gpus}\n    port: ${p}\n    vllm:\n      args: [--allowed-origins, '["${origin}"]']\n`;
  writeFileSync(config, `models:\n${entry(a, 'alpha', '[0, 1]', portA, 'https://a.example')}${entry(b, 'beta', '[2, 3]', portB, 'https://b.example')}`);
  const run = runLlmserve(['start', '--config', config, '--port', String(port), '--probe-dir', path.join(dir, 'probe'), '--stop-timeout', '3'], {
    LLMSERVE_MASTER_KEY: TEST_KEY,
    FAKE_NVIDIA_SMI_GPUS: '4',
    FAKE_VLLM_LOAD_MS: '300',
  });
  t.after(async () => assert.equal(await run.cleanup(), 0, 'no process may be left behind'));
  await run.waitForLine(/\| ready after .* serves "alpha" on .*, "beta" on /, 60_000);
  const call = async (model: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { origin: 'https://a.example', 'content-type': 'application/json', authorization: `Bearer ${TEST_KEY}` },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.text();
    return res.headers.get('access-control-allow-origin');
  };
  assert.equal(await call('alpha'), 'https://a.example');
  // beta's vLLM allows https://b.example only: a page on https://a.example must not be handed beta's answer.
  assert.equal(await call('beta'), null);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});
