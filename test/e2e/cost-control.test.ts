// Cost control end to end with the built bin and the fake vLLM: rpm, models, expiry, budget, a stream counted
// without the client seeing a usage chunk, usage surviving a restart, `llmserve usage --json`, and /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../helpers/ports.js';
import { makeModelDir, tempDir } from '../helpers/fixtures.js';
import { runLlmserve, type LlmserveRun } from '../helpers/llmserve.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

const MASTER = 'sk-e2e-master-0123456789abcdef0123';
const KEYS = {
  limited: 'sk-e2e-limited-0123456789abcdef01',
  other: 'sk-e2e-othermodels-0123456789abcd',
  expired: 'sk-e2e-expired-0123456789abcdef01',
  budget: 'sk-e2e-budget-0123456789abcdef012',
  counted: 'sk-e2e-counted-0123456789abcdef01',
  streamer: 'sk-e2e-streamer-0123456789abcdef0',
};

function config(model: string): string {
  return `model: ${model}
served_model_name: tiny
proxy:
  keys:
    - { name: limited, key: ${KEYS.limited}, rpm: 2 }
    - { name: other-models, key: ${KEYS.other}, models: [some-other-model] }
    - { name: expired, key: ${KEYS.expired}, expires: 2020-01-01 }
    - { name: budget, key: ${KEYS.budget}, budget: { tokens: 1, period: 1d } }
    - { name: counted, key: ${KEYS.counted}, tpm: 1000000 }
    - { name: streamer, key: ${KEYS.streamer}, max_parallel: 4 }
usage:
  dir: usage-data
  flush_interval: 0.2
`;
}

async function post(port: number, key: string, body: Record<string, unknown> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hello there' }], ...body }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Starts llmserve and waits until it is ready (not-ready removed). */
async function start(cfg: string, dir: string, port: number, backendPort: number): Promise<LlmserveRun> {
  const probeDir = path.join(dir, `probe-${port}-${Date.now()}`);
  const run = runLlmserve(['start', '--config', cfg, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir], {
    LLMSERVE_MASTER_KEY: MASTER,
    FAKE_NVIDIA_SMI_GPUS: '1',
    LLMSERVE_USAGE_DIR: undefined,
  });
  await waitForFile(path.join(probeDir, 'not-ready'), true, 30_000);
  await waitForFile(path.join(probeDir, 'not-ready'), false, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${run.output()}`);
  });
  return run;
}

/** Runs `llmserve usage ...` to completion and returns its output. */
async function usage(args: string[]): Promise<string> {
  const run = runLlmserve(['usage', ...args], { LLMSERVE_USAGE_DIR: undefined });
  const { code } = await run.exited;
  assert.equal(code, 0, run.output());
  assert.equal(await run.cleanup(), 0);
  return run.output();
}

test('limits, stream accounting and usage across a restart, with the built bin', async (t) => {
  const dir = await tempDir();
  const model = await makeModelDir();
  const cfg = path.join(dir, 'llmserve.yaml');
  writeFileSync(cfg, config(model));
  const [port, backendPort] = [await freePort(), await freePort()];

  let run = await start(cfg, dir, port, backendPort);
  t.after(async () => assert.equal(await run.cleanup(), 0, 'no process may be left behind'));

  // rpm: 2 -> the third request within a minute is 429 with Retry-After.
  assert.equal((await post(port, KEYS.limited)).status, 200);
  assert.equal((await post(port, KEYS.limited)).status, 200);
  const third = await post(port, KEYS.limited);
  assert.equal(third.status, 429, third.text);
  assert.ok(Number(third.headers.get('retry-after')) >= 1);
  assert.equal(third.headers.get('x-ratelimit-limit-requests'), '2');
  assert.equal(third.headers.get('x-ratelimit-remaining-requests'), '0');

  // A key limited to other models: 404 model_not_found.
  const other = await post(port, KEYS.other);
  assert.equal(other.status, 404, other.text);
  assert.equal(JSON.parse(other.text).error.code, 'model_not_found');

  // An expired key: 401.
  const expired = await post(port, KEYS.expired);
  assert.equal(expired.status, 401, expired.text);
  assert.equal(JSON.parse(expired.text).error.code, 'invalid_api_key');

  // A spent budget: 429 insufficient_quota (the first answer's tokens are counted when it ends).
  assert.equal((await post(port, KEYS.budget)).status, 200);
  const spent = await waitFor(
    async () => {
      const r = await post(port, KEYS.budget);
      return r.status === 429 ? r : null;
    },
    { timeoutMs: 30_000, message: 'the budget to be spent' },
  );
  assert.equal(JSON.parse(spent.text).error.type, 'insufficient_quota');
  assert.equal(JSON.parse(spent.text).error.code, 'insufficient_quota');

  // Three requests to count, and a stream that did not ask for usage: counted, no usage chunk for the client.
  for (let i = 0; i < 3; i++) assert.equal((await post(port, KEYS.counted)).status, 200);
  const stream = await post(port, KEYS.streamer, { stream: true });
  assert.equal(stream.status, 200);
  assert.match(stream.text, /data: \[DONE\]/);
  assert.ok(!stream.text.includes('"usage"'), `the client got a usage chunk:\n${stream.text}`);

  // /metrics with a key: counters by key name, never a key.
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } });
  const page = await metrics.text();
  assert.equal(metrics.status, 200);
  assert.match(page, /^llmserve_requests_total\{key="counted",model="tiny",status="200"\} 3$/m);
  assert.match(page, /^llmserve_tokens_total\{key="counted",model="tiny",kind="completion"\} \d+$/m);
  assert.match(page, /^vllm:num_requests_running/m);
  for (const k of [MASTER, ...Object.values(KEYS)]) assert.ok(!page.includes(k), 'a key in /metrics');

  // Restart llmserve (SIGTERM writes the last batch), then read usage.
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
  // No Node warning in the log (on Node 22, loading node:sqlite used to put an ExperimentalWarning there).
  assert.doesNotMatch(run.output(), /node-warning|ExperimentalWarning/, run.output());
  assert.equal(await run.cleanup(), 0);
  run = await start(cfg, dir, port, backendPort);
  // The budget read the store at start: still spent after the restart.
  assert.equal((await post(port, KEYS.budget)).status, 429);

  const doc = JSON.parse(await usage(['--config', cfg, '--json'])) as { rows: Array<Record<string, unknown>> };
  const row = (key: string) => doc.rows.find((r) => r.key === key);
  const counted = row('counted');
  assert.ok(counted, JSON.stringify(doc));
  assert.equal(counted.model, 'tiny');
  assert.equal(counted.requests, 3);
  assert.equal(counted.errors, 0);
  assert.ok((counted.prompt_tokens as number) > 0 && (counted.completion_tokens as number) > 0, JSON.stringify(counted));
  assert.deepEqual(Object.keys(counted), ['key', 'model', 'requests', 'prompt_tokens', 'completion_tokens', 'errors']);
  const streamer = row('streamer');
  assert.equal(streamer?.requests, 1);
  assert.ok((streamer?.completion_tokens as number) > 0, 'the stream was counted from the usage chunk llmserve asked for');
  assert.equal(row('limited')?.requests, 3);
  assert.equal(row('limited')?.errors, 1);
  for (const k of [MASTER, ...Object.values(KEYS)]) assert.ok(!JSON.stringify(doc).includes(k));

  const table = await usage(['--config', cfg, '--key', 'counted']);
  assert.match(table, /KEY\s+MODEL\s+REQUESTS\s+PROMPT\s+COMPLETION\s+TOTAL\s+ERRORS/);
  assert.match(table, /counted\s+tiny\s+3\s/);
  assert.doesNotMatch(table, /streamer/);

  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});
