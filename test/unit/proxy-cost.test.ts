// The proxy with per-key policies: every limit and its OpenAI-shaped answer, token accounting (streams included),
// usage across a restart, and /metrics (key names, never keys).
import { test } from 'node:test';
import net from 'node:net';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { KeyPolicy } from '../../src/config/index.js';
import { sharedBackendModelEntries } from '../../src/proxy/backend-models.js';
import { budgetKeys, budgetUsage } from '../../src/proxy/cost.js';
import { memoryStore, readUsageStore } from '../../src/usage/store.js';
import type { UsageRow } from '../../src/usage/types.js';
import { tempDir } from '../helpers/fixtures.js';
import { freePort } from '../helpers/ports.js';
import { KEY, KEY_NAME, bearer, request, sha256Hex, startPair, until, type Pair } from '../helpers/upstream.js';

const OTHER = 'sk-llmserve-test-OTHER-0a1b2c3d4e5f6';
const chat = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }] };

/** A pair whose key `alice` has `policy`; `bob` (OTHER) has none. */
function pair(policy: KeyPolicy | undefined, over: Parameters<typeof startPair>[0] = {}, opts: Parameters<typeof startPair>[1] = {}): Promise<Pair> {
  return startPair(
    {
      keys: [
        { name: KEY_NAME, sha256Hex: sha256Hex(KEY), ...(policy === undefined ? {} : { policy }) },
        { name: 'bob', sha256Hex: sha256Hex(OTHER) },
      ],
      ...over,
    },
    opts,
  );
}

const errorOf = (text: string) => (JSON.parse(text) as { error: { type: string; code: string; message: string } }).error;

/** One more chat completion is still admitted (`why`); once it has counted, the next is a 429 insufficient_quota. */
async function lastBeforeBudgetSpent(p: Pair, headers: Record<string, string>, why: string): Promise<void> {
  assert.equal((await request(p.port, '/v1/chat/completions', { headers, body: chat })).status, 200, why);
  await until(() => p.proxy.inflight() === 0, 2000, 'the request to finish');
  const no = await request(p.port, '/v1/chat/completions', { headers, body: chat });
  assert.equal(no.status, 429);
  assert.equal(errorOf(no.text).code, 'insufficient_quota');
}

test('rpm: 2 -> the third request within a minute is 429 with Retry-After and x-ratelimit headers', async () => {
  const p = await pair({ rpm: 2 });
  try {
    const first = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-ratelimit-limit-requests'], '2');
    assert.equal(first.headers['x-ratelimit-remaining-requests'], '1');
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat })).status, 200);
    const third = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(third.status, 429);
    assert.ok(Number(third.headers['retry-after']) >= 1 && Number(third.headers['retry-after']) <= 60);
    assert.equal(third.headers['x-ratelimit-limit-requests'], '2');
    assert.equal(third.headers['x-ratelimit-remaining-requests'], '0');
    // Back to the full limit when the second request leaves its one-second slot: just under a minute, or 1m0s.
    assert.match(String(third.headers['x-ratelimit-reset-requests']), /^\d+(\.\d+)?s$|^\d+ms$|^1m0s$/);
    assert.deepEqual({ ...errorOf(third.text), message: '' }, { type: 'requests', code: 'rate_limit_exceeded', message: '', param: null } as never);
    assert.equal(p.upstream.requests.filter((r) => r.path === '/v1/chat/completions').length, 2, 'the refused request never reached the backend');
    // A key without limits is not affected.
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: { authorization: `Bearer ${OTHER}` }, body: chat })).status, 200);
  } finally {
    await p.close();
  }
});

test('tpm: tokens from the usage of answers fill the window -> 429 with x-ratelimit-*-tokens', async () => {
  const p = await pair({ tpm: 2 });
  try {
    const ok = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-ratelimit-limit-tokens'], '2');
    await until(() => p.proxy.inflight() === 0, 2000, 'the first request to finish');
    const no = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(no.status, 429);
    assert.equal(errorOf(no.text).type, 'tokens');
    assert.equal(no.headers['x-ratelimit-remaining-tokens'], '0');
    assert.ok(no.headers['retry-after'] !== undefined);
  } finally {
    await p.close();
  }
});

test('max_parallel: a second request while one streams is 429', async () => {
  const p = await pair({ maxParallel: 1 }, {}, { behaviour: { events: 50, intervalMs: 20 } });
  try {
    const streaming = request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: true } });
    await p.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    const second = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(second.status, 429);
    assert.equal(errorOf(second.text).code, 'rate_limit_exceeded');
    assert.equal(second.headers['retry-after'], '1');
    assert.equal((await streaming).status, 200);
    await until(() => p.proxy.inflight() === 0, 3000, 'the stream to end');
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat })).status, 200, 'the slot is free again');
  } finally {
    await p.close();
  }
});

test('budget spent -> 429 insufficient_quota (type and code)', async () => {
  const p = await pair({ budget: { tokens: 2, period: '1d' } });
  try {
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat })).status, 200);
    await until(() => p.proxy.inflight() === 0, 2000, 'the first request to finish');
    const no = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(no.status, 429);
    const e = errorOf(no.text);
    assert.equal(e.type, 'insufficient_quota');
    assert.equal(e.code, 'insufficient_quota');
  } finally {
    await p.close();
  }
});

test('routes that run no inference (/tokenize, /detokenize, /v1/models) count as requests, never as estimated tokens', async () => {
  const dir = await tempDir();
  const p = await pair({ budget: { tokens: 2, period: '1d' } }, { usage: { dir, track: 'limited', flushInterval: 60 } });
  try {
    // A large body: an estimate from it (about 4 bytes a token) would have spent the budget many times over.
    const prompt = 'word '.repeat(200);
    assert.equal((await request(p.port, '/tokenize', { headers: bearer, body: { model: 'test-model', prompt } })).status, 200);
    assert.equal((await request(p.port, '/detokenize', { headers: bearer, body: { model: 'test-model', tokens: [1, 2, 3] } })).status, 200);
    assert.equal((await request(p.port, '/v1/models', { headers: bearer })).status, 200);
    await until(() => p.proxy.inflight() === 0, 2000, 'the requests to finish');
    const text = (await request(p.port, '/metrics', { headers: bearer })).text;
    assert.doesNotMatch(text, /^llmserve_estimated_requests_total\{/m);
    assert.doesNotMatch(text, /^llmserve_tokens_total\{key="alice"/m);
    await lastBeforeBudgetSpent(p, bearer, 'no tokens used yet');
  } finally {
    await p.close();
  }
  const store = await readUsageStore(dir);
  try {
    // Every request counted: the model list (no body: model `-`); the (de)tokenize calls, the chat completion admitted
    // (2 tokens) and the one the budget refused.
    const rows = store?.rows().map((r) => [r.key, r.model, r.requests, r.promptTokens, r.completionTokens, r.estimated]);
    assert.deepEqual(rows?.sort(), [[KEY_NAME, '-', 1, 0, 0, 0], [KEY_NAME, 'test-model', 4, 1, 1, 0]]);
  } finally {
    store?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a keys-file reload that adds a budget counts the tokens used before it (SIGHUP)', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'keys.yaml');
  const carol = 'sk-carol-0123456789abcdef';
  const asCarol = { authorization: `Bearer ${carol}` };
  await fs.writeFile(file, `- name: carol\n  key: ${carol}\n  tpm: 100\n`);
  const p = await pair(undefined, { keysFile: file });
  try {
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: asCarol, body: chat })).status, 200);
    await until(() => p.proxy.inflight() === 0, 2000, 'the request to finish');
    // 2 tokens used (not yet written to the store: the recorder flushes every 5 s); the new budget allows 3.
    await fs.writeFile(file, `- name: carol\n  key: ${carol}\n  tpm: 100\n  budget: { tokens: 3, period: 1d }\n`);
    await p.proxy.reloadKeys();
    await lastBeforeBudgetSpent(p, asCarol, '2 of 3 tokens used');
  } finally {
    await p.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('budgetUsage: rows of the store and rows not written yet, each once; hours older than 30 days left out of the hourly rows', () => {
  const hour = 500_000;
  const row = (key: string, h: number, prompt: number, completion: number): UsageRow => ({ hour: h, key, model: 'm', requests: 1, promptTokens: prompt, completionTokens: completion, errors: 0, estimated: 0 });
  const store = memoryStore();
  store.add([row('a', hour - 800, 100, 0), row('a', hour - 1, 3, 4), row('b', hour, 1, 1)]);
  const u = budgetUsage(store, [row('a', hour - 1, 1, 0), row('a', hour, 2, 2), row('c', hour, 5, 0)], hour * 3_600_000);
  const hourly = [...u.hourly].sort((x, y) => x.key.localeCompare(y.key) || x.hour - y.hour).map((s) => [s.key, s.hour - hour, s.tokens]);
  assert.deepEqual(hourly, [['a', -1, 8], ['a', 0, 4], ['b', 0, 2], ['c', 0, 5]]);
  assert.deepEqual([...u.totals].sort(), [['a', 112], ['b', 2], ['c', 5]]);
  // Only the keys with a budget are read, by the hour and in total, from the store and from the rows not written yet.
  const some = budgetUsage(store, [row('a', hour, 2, 2), row('c', hour, 5, 0)], hour * 3_600_000, ['a']);
  assert.deepEqual(some.hourly.map((x) => [x.key, x.hour - hour, x.tokens]).sort(), [['a', -1, 7], ['a', 0, 4]]);
  assert.deepEqual([...some.totals], [['a', 111]]);
  const none = budgetUsage(store, [row('a', hour, 2, 2)], hour * 3_600_000, []);
  assert.deepEqual([none.hourly, [...none.totals]], [[], []], 'no budget, nothing read');
  assert.deepEqual(budgetKeys(new Map([['a', { budget: { tokens: 5, period: '1d' as const } }], ['b', { rpm: 3 }]])), ['a']);
});

test('models allowlist -> 404 model_not_found (the key does not learn the model exists); /v1/models lists only allowed names', async () => {
  const p = await pair({ models: ['small'] }, { modelAliases: { small: 'test-model', big: 'test-model' } });
  try {
    const no = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, model: 'big' } });
    assert.equal(no.status, 404);
    assert.equal(errorOf(no.text).code, 'model_not_found');
    assert.match(errorOf(no.text).message, /does not exist or you do not have access to it/);
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, model: 'small' } })).status, 200);
    const list = (await request(p.port, '/v1/models', { headers: bearer })).json() as { data: { id: string }[] };
    assert.deepEqual(list.data.map((m) => m.id), ['small']);
    const all = (await request(p.port, '/v1/models', { headers: { authorization: `Bearer ${OTHER}` } })).json() as { data: { id: string }[] };
    assert.deepEqual(all.data.map((m) => m.id), ['test-model', 'small', 'big']);
  } finally {
    await p.close();
  }
});

test('models.retrieve (GET /v1/models/{id}, and /models/{id}): the entry for a name the key may use, 404 model_not_found otherwise', async () => {
  const p = await pair({ models: ['small'] }, { modelAliases: { small: 'test-model', 'org/big': 'test-model' } });
  try {
    const one = await request(p.port, '/v1/models/small', { headers: bearer });
    assert.equal(one.status, 200, one.text);
    // vLLM's own entry of the model the alias names, under the alias (the test upstream's: max_model_len 4096).
    const entry = one.json() as Record<string, unknown>;
    assert.deepEqual([entry.id, entry.object, entry.owned_by, entry.root, entry.max_model_len], ['small', 'model', 'vllm', '/models/x', 4096]);
    // Served or not, a name the key may not use gets the same answer: the key does not learn which names exist.
    const refusals = new Set<string>();
    for (const id of ['test-model', 'org%2Fbig', 'nope']) {
      const no = await request(p.port, `/v1/models/${id}`, { headers: bearer });
      assert.equal(no.status, 404, id);
      assert.equal(errorOf(no.text).code, 'model_not_found', id);
      refusals.add(errorOf(no.text).message.replace(decodeURIComponent(id), 'NAME'));
    }
    for (const model of ['org/big', 'nope']) {
      const chatted = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, model } });
      assert.equal(chatted.status, 404, model);
      refusals.add(errorOf(chatted.text).message.replace(model, 'NAME'));
    }
    assert.deepEqual([...refusals], ['The model `NAME` does not exist or you do not have access to it.']);
    // A key without an allowlist: every served name and alias, a hub-style name with its slash encoded as the SDKs send it.
    const other = { authorization: `Bearer ${OTHER}` };
    assert.equal(((await request(p.port, '/v1/models/org%2Fbig', { headers: other })).json() as { id: string }).id, 'org/big');
    assert.equal(((await request(p.port, '/models/test-model', { headers: other })).json() as { id: string }).id, 'test-model');
    assert.equal(errorOf((await request(p.port, '/v1/models/nope', { headers: other })).text).code, 'model_not_found');
    assert.equal((await request(p.port, '/v1/models/small', {})).status, 401);
    assert.equal(p.upstream.requests.filter((r) => r.path.startsWith('/v1/models/')).length, 0);
  } finally {
    await p.close();
  }
  // No aliases: a LoRA adapter that only vLLM's list names (as models.list shows it) is retrieved too.
  const lora = await pair(undefined, {}, { behaviour: { listedModels: ['sql-lora'] } });
  try {
    const entry = (await request(lora.port, '/v1/models/sql-lora', { headers: { authorization: `Bearer ${OTHER}` } })).json() as Record<string, unknown>;
    assert.deepEqual([entry.id, entry.parent, entry.root], ['sql-lora', 'test-model', '/adapters/sql-lora']);
  } finally {
    await lora.close();
  }
});

test('a key allowed only an alias may send requests that name no model (they go to the model the alias names)', async () => {
  const p = await pair({ models: ['small'] }, { modelAliases: { small: 'test-model' } });
  try {
    // Both reach the backend (whatever it answers, it is not the proxy's model_not_found).
    for (const [path, options] of [['/tokenize', { body: { prompt: 'hi' } }], ['/v1/responses/resp_1', { method: 'GET' }]] as const) {
      const r = await request(p.port, path, { headers: bearer, ...options });
      assert.doesNotMatch(r.text, /model_not_found/, path);
      await p.upstream.waitForRequest((u) => u.path === path);
    }
  } finally {
    await p.close();
  }
  const q = await pair({ models: ['other'] }, { modelAliases: { small: 'test-model', other: 'test-model-2' } });
  try {
    assert.equal((await request(q.port, '/tokenize', { headers: bearer, body: { prompt: 'hi' } })).status, 404);
  } finally {
    await q.close();
  }
});

test('a key with an allowlist: a JSON body the proxy cannot read (NaN, UTF-16), which vLLM would, is a 400, never forwarded unchecked', async () => {
  const p = await pair({ models: ['small'] }, { modelAliases: { small: 'test-model' } });
  try {
    const sent = '{"model":"sql-lora","messages":[],"x":NaN}';
    for (const body of [Buffer.from(sent), Buffer.from('\ufeff' + sent.replace('NaN', '1'), 'utf16le'), Buffer.from('["sql-lora"]')]) {
      const no = await request(p.port, '/v1/chat/completions', { headers: { ...bearer, 'content-type': 'application/json' }, body });
      assert.equal(no.status, 400, no.text);
      assert.deepEqual(errorOf(no.text), { type: 'invalid_request_error', code: 'bad_request', param: null, message: 'The request body cannot be read: expected a JSON object in UTF-8 (NaN and Infinity are not JSON).' } as never);
    }
    // An empty Content-Type is no type, which vLLM (FastAPI) reads as JSON: so does the proxy.
    const untyped = await request(p.port, '/v1/chat/completions', { headers: { ...bearer, 'content-type': '' }, body: JSON.stringify({ ...chat, model: 'sql-lora' }) });
    assert.equal(untyped.status, 404, untyped.text);
    assert.equal(p.upstream.requests.filter((r) => r.path === '/v1/chat/completions').length, 0);
    // An empty body is no body (a Responses cancel is a POST without one): it goes on.
    await request(p.port, '/v1/responses/resp_1/cancel', { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: '' });
    await p.upstream.waitForRequest((u) => u.path === '/v1/responses/resp_1/cancel');
    const metrics = await request(p.port, '/metrics', { headers: bearer });
    assert.match(metrics.text, /llmserve_rejected_total\{reason="invalid_body"\} 3/);
  } finally {
    await p.close();
  }
});

test('a key with an allowlist: an upload naming a model it may not use is refused without aliases too, and one with two `model` fields is a 400', async () => {
  const TYPE = 'multipart/form-data; boundary=b0';
  const upload = (...models: string[]) => Buffer.from([...models.map((m) => `--b0\r\nContent-Disposition: form-data; name="model"\r\n\r\n${m}\r\n`), '--b0\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n--b0--\r\n'].join(''), 'latin1');
  const send = (port: number, body: Buffer) => request(port, '/v1/audio/transcriptions', { headers: { ...bearer, 'content-type': TYPE }, body });
  const p = await pair({ models: ['test-model'] });
  try {
    // A LoRA adapter vLLM serves beside the model (--lora-modules), which the key may not use.
    assert.equal((await send(p.port, upload('sql-lora'))).status, 404);
    assert.equal((await send(p.port, upload('test-model', 'sql-lora'))).status, 400);
    assert.equal(p.upstream.requests.length, 0);
    await send(p.port, upload('test-model'));
    await p.upstream.waitForRequest((u) => u.path === '/v1/audio/transcriptions');
  } finally {
    await p.close();
  }
  // With aliases, for a key without limits too: the proxy reads the field to rewrite it, and two are ambiguous.
  const q = await pair(undefined, { modelAliases: { 'whisper-1': 'test-model' } });
  try {
    const no = await send(q.port, upload('whisper-1', 'sql-lora'));
    assert.equal(no.status, 400);
    assert.match(errorOf(no.text).message, /more than one `model` field/);
    assert.equal(q.upstream.requests.length, 0);
  } finally {
    await q.close();
  }
});

test('model lists and retrieves the proxy answers itself count toward a key\'s rpm, with its rate-limit headers', async () => {
  const p = await pair({ rpm: 3, models: ['small'] }, { modelAliases: { small: 'test-model' } });
  try {
    const list = await request(p.port, '/v1/models', { headers: bearer });
    assert.equal(list.status, 200);
    assert.equal(list.headers['x-ratelimit-remaining-requests'], '2');
    const one = await request(p.port, '/v1/models/small', { headers: bearer });
    assert.equal(one.status, 200);
    assert.equal(one.headers['x-ratelimit-remaining-requests'], '1');
    assert.equal((await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, model: 'small' } })).status, 200);
    const fourth = await request(p.port, '/v1/models', { headers: bearer });
    assert.equal(fourth.status, 429);
    assert.equal(errorOf(fourth.text).code, 'rate_limit_exceeded');
    // A name the key may not use is the same 404 as ever, whatever its rpm (the allowlist comes first).
    assert.equal((await request(p.port, '/v1/models/nope', { headers: bearer })).status, 404);
  } finally {
    await p.close();
  }
});

test('vLLM\'s model entries are asked once per second at most, however many lists and retrieves ask for them', async () => {
  let now = 0;
  const asked: string[][] = [];
  const fetch = async (urls: readonly string[]) => {
    asked.push([...urls]);
    return new Map([['m', { id: 'm' }]]);
  };
  const shared = sharedBackendModelEntries(1000, fetch, () => now);
  const a = ['http://127.0.0.1:1'];
  await Promise.all([shared(a), shared(a), shared(a)]);
  now = 999;
  await shared(a);
  assert.deepEqual(asked, [a]);
  // Another set of backends is asked for itself; a second later, asked again.
  await shared(['http://127.0.0.1:2']);
  now = 1000;
  assert.equal((await shared(a)).get('m')?.id, 'm');
  assert.deepEqual(asked, [a, ['http://127.0.0.1:2'], a]);
});

test('a key limited to other models gets 404 for the served model', async () => {
  const p = await pair({ models: ['another-model'] });
  try {
    const no = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(no.status, 404);
    assert.equal(p.upstream.requests.length, 0);
  } finally {
    await p.close();
  }
});

test('expired and disabled keys -> 401 invalid_api_key before the body is read', async () => {
  const p = await pair({ expires: '2020-01-01T00:00:00.000Z' });
  try {
    const no = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(no.status, 401);
    assert.equal(errorOf(no.text).code, 'invalid_api_key');
    assert.match(errorOf(no.text).message, /expired/);
  } finally {
    await p.close();
  }
  const d = await pair({ disabled: true });
  try {
    const no = await request(d.port, '/v1/chat/completions', { headers: bearer, body: chat });
    assert.equal(no.status, 401);
    assert.match(errorOf(no.text).message, /disabled/);
    // In every state: while vLLM restarts (or the proxy drains) a refused key is still a 401, not a 503 to retry.
    for (const state of ['restarting', 'draining'] as const) {
      d.proxy.setState(state);
      const refused = await request(d.port, '/v1/chat/completions', { headers: bearer, body: chat });
      assert.equal(refused.status, 401, `${state}: ${refused.text}`);
      assert.equal(refused.headers['retry-after'], undefined);
    }
  } finally {
    await d.close();
  }
});

test('a stream without include_usage: counted, and the client sees exactly the stream it asked for', async () => {
  const dir = await tempDir();
  const p = await pair({ rpm: 100 }, { usage: { dir, track: 'limited', flushInterval: 60 } }, { behaviour: { events: 3, intervalMs: 1 } });
  try {
    const reply = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: true } });
    assert.equal(reply.status, 200);
    const up = await p.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.deepEqual(JSON.parse(up.body.toString()).stream_options, { include_usage: true, continuous_usage_stats: false }, 'added upstream');
    assert.ok(!reply.text.includes('usage'), reply.text);
    assert.equal(reply.text.match(/^data: /gm)?.length, 4, 'three chunks and [DONE]');
    assert.ok(reply.text.endsWith('data: [DONE]\n\n'));
    // A client that asked for usage gets it.
    const asked = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: true, stream_options: { include_usage: true } } });
    assert.match(asked.text, /"choices":\[\],"usage":\{"prompt_tokens":1,"completion_tokens":3/);
    // So does one whose stream_options leave include_usage out: vLLM defaults it to true and sends usage.
    const defaulted = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: true, stream_options: {} } });
    assert.match(defaulted.text, /"choices":\[\],"usage":\{"prompt_tokens":1,"completion_tokens":3/);
    // `"stream": "true"` streams in vLLM (pydantic reads the bool leniently): its usage is asked for as well.
    const lenient = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: 'true' } });
    assert.equal(lenient.text.match(/^data: /gm)?.length, 4, lenient.text);
    assert.ok(!lenient.text.includes('usage'), lenient.text);
    await until(() => p.proxy.inflight() === 0, 2000, 'requests to finish');
  } finally {
    await p.close();
  }
  const store = await readUsageStore(dir);
  try {
    assert.deepEqual(
      store?.rows().map((r) => [r.key, r.model, r.requests, r.promptTokens, r.completionTokens, r.estimated]),
      [[KEY_NAME, 'test-model', 4, 4, 12, 0]],
    );
  } finally {
    store?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a stream that fails after it started (vLLM\'s error event under the 200) is recorded as an error, with no tokens made up', async () => {
  const dir = await tempDir();
  const p = await pair({ rpm: 100 }, { usage: { dir, track: 'limited', flushInterval: 60 } }, { behaviour: { events: 5, intervalMs: 1, errorAfterEvents: 2 } });
  try {
    const reply = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: true } });
    assert.equal(reply.status, 200);
    assert.match(reply.text, /data: \{"error":/, 'the client gets the error event');
  } finally {
    await p.close();
  }
  const store = await readUsageStore(dir);
  try {
    assert.deepEqual(store?.rows().map((r) => [r.key, r.requests, r.errors, r.promptTokens, r.completionTokens, r.estimated]), [[KEY_NAME, 1, 1, 0, 0, 0]]);
  } finally {
    store?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a stream still running when the proxy closes (it outlived the drain) is recorded too', async () => {
  const dir = await tempDir();
  const p = await pair({ rpm: 100 }, { usage: { dir, track: 'limited', flushInterval: 60 } }, { behaviour: { events: 1000, intervalMs: 20 } });
  let closed = false;
  try {
    const socket = net.connect(p.port, '127.0.0.1');
    socket.on('error', () => {});
    const body = JSON.stringify({ ...chat, stream: true });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let seen = '';
    socket.on('data', (c: Buffer) => (seen += c.toString()));
    await until(() => seen.includes('data: '), 5000, 'the first event');
    await p.close();
    closed = true;
  } finally {
    if (!closed) await p.close();
  }
  const store = await readUsageStore(dir);
  try {
    assert.deepEqual(store?.rows().map((r) => [r.key, r.requests, r.errors]), [[KEY_NAME, 1, 1]], 'the cut stream is one request, counted as an error');
  } finally {
    store?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('usage survives a restart of the proxy; budgets start from it', async () => {
  const dir = await tempDir();
  const usage = { dir, track: 'limited' as const, flushInterval: 60 };
  try {
    const first = await pair({ budget: { tokens: 7, period: 'total' } }, { usage });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(first.port, '/v1/chat/completions', { headers: bearer, body: chat })).status, 200);
      assert.equal((await request(first.port, '/v1/chat/completions', { headers: { authorization: `Bearer ${OTHER}` }, body: chat })).status, 200);
      await until(() => first.proxy.inflight() === 0, 2000, 'requests to finish');
    } finally {
      await first.close();
    }
    const store = await readUsageStore(dir);
    const rows = store?.rows().map((r) => [r.key, r.model, r.requests, r.promptTokens, r.completionTokens]);
    store?.close();
    // bob has no policy: counted on the fast path (requests only, body never read).
    assert.deepEqual(rows, [[KEY_NAME, 'test-model', 3, 3, 3], ['bob', '-', 1, 0, 0]]);

    const second = await pair({ budget: { tokens: 7, period: 'total' } }, { usage });
    try {
      await lastBeforeBudgetSpent(second, bearer, '6 of 7 tokens used');
    } finally {
      await second.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('/metrics: needs a key; key names, never keys; vllm:* passed through; metrics_port on loopback without a key', async () => {
  const metricsPort = await freePort();
  const p = await pair({ rpm: 1 }, { metricsPort });
  try {
    await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat });
    await request(p.port, '/v1/chat/completions', { headers: { authorization: 'Bearer wrong-key-xyz' }, body: chat });
    await until(() => p.proxy.inflight() === 0, 2000, 'requests to finish');
    assert.equal((await request(p.port, '/metrics')).status, 401);
    const page = await request(p.port, '/metrics', { headers: { authorization: `Bearer ${OTHER}` } });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = page.text;
    assert.match(text, /^llmserve_requests_total\{key="alice",model="test-model",status="200"\} 1$/m);
    assert.match(text, /^llmserve_requests_total\{key="alice",model="test-model",status="429"\} 1$/m);
    assert.match(text, /^llmserve_tokens_total\{key="alice",model="test-model",kind="prompt"\} 1$/m);
    assert.match(text, /^llmserve_tokens_total\{key="alice",model="test-model",kind="completion"\} 1$/m);
    assert.match(text, /^llmserve_rejected_total\{reason="rpm"\} 1$/m);
    assert.match(text, /^llmserve_rejected_total\{reason="auth"\} 2$/m, "the wrong key and the keyless scrape");
    assert.match(text, /^llmserve_backend_state\{state="ready"\} 1$/m);
    assert.match(text, /^llmserve_request_duration_seconds_count\{key="alice",model="test-model"\} 2$/m);
    assert.match(text, /^vllm:num_requests_running 0$/m);
    for (const secret of [KEY, OTHER, 'wrong-key-xyz', sha256Hex(KEY)]) assert.ok(!text.includes(secret), 'a key in /metrics');
    const local = await request(metricsPort, '/metrics');
    assert.equal(local.status, 200);
    assert.match(local.text, /llmserve_requests_total/);
    assert.equal((await request(metricsPort, '/v1/chat/completions', { body: chat })).status, 404, 'only /metrics there');
  } finally {
    await p.close();
  }
});

test('model names the proxy does not serve are counted as `other` (clients cannot grow the metrics)', async () => {
  const p = await pair({ rpm: 100 });
  try {
    for (const model of ['x1', 'x2']) await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, model } });
    await until(() => p.proxy.inflight() === 0, 2000, 'requests to finish');
    const text = (await request(p.port, '/metrics', { headers: bearer })).text;
    assert.match(text, /^llmserve_requests_total\{key="alice",model="other",status="404"\} 2$/m);
    assert.doesNotMatch(text, /model="x1"/);
  } finally {
    await p.close();
  }
});
