// The official OpenAI SDK as a real client against proxy + fake vLLM.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { KEY, KEY_NAME, sha256Hex, startPair, until } from '../helpers/upstream.js';

function client(port: number, apiKey = KEY): OpenAI {
  return new OpenAI({ apiKey, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeout: 10_000 });
}

describe('openai SDK', () => {
  it('lists models, completes, streams, and raises AuthenticationError on a wrong key', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const openai = client(pair.port);

    const models = await openai.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['test-model']);

    const done = await openai.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(done.choices[0]?.message.content, 'hello');

    const stream = await openai.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const parts: string[] = [];
    for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? '');
    assert.deepEqual(parts, ['t0', 't1', 't2']);

    await assert.rejects(client(pair.port, 'sk-wrong-key-000000000000').models.list(), (err: unknown) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      return true;
    });
    // The SDK sends its key as Bearer: none reached the backend.
    assert.ok(pair.upstream.requests.every((r) => r.headers.authorization === undefined));
  });

  it('maps the proxy\'s own errors to the SDK\'s classes', async (t) => {
    const pair = await startPair({ modelAliases: { alias: 'test-model' }, state: 'ready' });
    t.after(() => pair.close());
    const openai = client(pair.port);
    await assert.rejects(openai.chat.completions.create({ model: 'nope', messages: [] }), OpenAI.NotFoundError);
    pair.proxy.setState('starting');
    await assert.rejects(openai.models.list(), OpenAI.InternalServerError);
  });

  it('works with a base URL without /v1, as LiteLLM\'s documentation configures clients', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const openai = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${pair.port}`, maxRetries: 0, timeout: 10_000 });
    assert.deepEqual((await openai.models.list()).data.map((m) => m.id), ['test-model']);
    const stream = await openai.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const parts: string[] = [];
    for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? '');
    assert.deepEqual(parts, ['t0', 't1', 't2']);
  });

  it('raises RateLimitError at once for a spent budget, without the SDK\'s automatic retries', async (t) => {
    const pair = await startPair({ keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY), policy: { budget: { tokens: 2, period: 'total' } } }] });
    t.after(() => pair.close());
    const chat = { model: 'test-model', messages: [{ role: 'user' as const, content: 'hi' }] };
    await client(pair.port).chat.completions.create(chat);
    await until(() => pair.proxy.inflight() === 0, 2000, 'the first request to be counted');
    // The SDK's defaults: two retries of every 429 (after Retry-After, or 0.5 s and 1 s without one).
    let attempts = 0;
    const counting = new OpenAI({
      apiKey: KEY,
      baseURL: `http://127.0.0.1:${pair.port}/v1`,
      fetch: (url, init) => {
        attempts++;
        return fetch(url, init);
      },
    });
    await assert.rejects(counting.chat.completions.create(chat), (err: unknown) => {
      assert.ok(err instanceof OpenAI.RateLimitError, String(err));
      assert.equal(err.code, 'insufficient_quota');
      assert.equal(err.type, 'insufficient_quota');
      return true;
    });
    assert.equal(attempts, 1, 'a spent budget is not retried');
  });
});
