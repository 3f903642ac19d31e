// Token accounting: the body plan (include_usage added), the meter on JSON answers and streams, the stripped event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { Meter } from '../../src/usage/meter.js';
import { planBody } from '../../src/usage/request.js';
import { usageFromJsonText } from '../../src/usage/tokens.js';

/** A fake backend response: a stream with status and headers. */
function response(status: number, type: string, chunks: Array<string | Buffer>): IncomingMessage {
  const r = Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))) as unknown as IncomingMessage;
  Object.assign(r, { statusCode: status, headers: { 'content-type': type } });
  return r;
}

async function drain(stream: NodeJS.ReadableStream): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(out).toString('utf8');
}

const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;

test('planBody: include_usage is added only to streams that lack it, aliases are rewritten', () => {
  const raw = (o: unknown) => Buffer.from(JSON.stringify(o));
  const p1 = planBody(raw({ model: 'm', stream: true, messages: [] }), '/v1/chat/completions', 'm', {});
  assert.equal(p1.injected, true);
  assert.deepEqual(JSON.parse(p1.body!.toString()).stream_options, { include_usage: true, continuous_usage_stats: false });
  const p2 = planBody(raw({ model: 'm', stream: true, stream_options: { include_usage: true } }), '/v1/chat/completions', 'm', {});
  assert.equal(p2.injected, false);
  assert.equal(p2.body, null, 'untouched body: forwarded as it came');
  // Given stream_options, vLLM's include_usage defaults to true: `{}` or continuous_usage_stats alone asks for usage,
  // and gets it from vLLM; nothing to add, nothing to strip.
  for (const options of [{}, { continuous_usage_stats: true }, { continuous_usage_stats: false }]) {
    const p = planBody(raw({ model: 'm', stream: true, stream_options: options }), '/v1/completions', 'm', {});
    assert.deepEqual([p.injected, p.body], [false, null], JSON.stringify(options));
  }
  // include_usage off (false, or null: None to pydantic): usage added, and continuous usage kept off, or every chunk
  // would carry usage the client never got before.
  for (const off of [false, null, 'no']) {
    const p = planBody(raw({ model: 'm', stream: true, stream_options: { include_usage: off, continuous_usage_stats: true } }), '/v1/chat/completions', 'm', {});
    assert.equal(p.injected, true, String(off));
    assert.deepEqual(JSON.parse(p.body!.toString()).stream_options, { include_usage: true, continuous_usage_stats: false });
  }
  assert.equal(planBody(raw({ model: 'm', stream: true, stream_options: null }), '/v1/chat/completions', 'm', {}).injected, true);
  // Options vLLM refuses (a list, a string): its 400, not a request the proxy made valid.
  for (const bad of [[], 'yes']) assert.deepEqual(planBody(raw({ model: 'm', stream: true, stream_options: bad }), '/v1/chat/completions', 'm', {}).body, null);
  const p4 = planBody(raw({ model: 'gpt-4o', messages: [] }), '/v1/chat/completions', 'm', { 'gpt-4o': 'm' });
  assert.equal(p4.model, 'gpt-4o');
  assert.equal(JSON.parse(p4.body!.toString()).model, 'm');
  assert.equal(planBody(raw({ model: 'x' }), '/v1/chat/completions', 'm', { a: 'm' }).unknown, true);
  assert.equal(planBody(Buffer.from('not json'), '/v1/chat/completions', 'm', {}).model, null);
  assert.equal(planBody(raw({ model: 'm', stream: true }), '/v1/responses', 'm', {}).injected, false);
  // vLLM's pydantic models read a bool in lax mode: these stream there, so here they are streams too.
  for (const stream of [1, 'true', 'True', 'yes', 'on', '1']) {
    const p = planBody(raw({ model: 'm', stream, messages: [] }), '/v1/chat/completions', 'm', {});
    assert.equal(p.stream, true, String(stream));
    assert.equal(p.injected, true, String(stream));
  }
  for (const stream of [false, 0, 'false', 'no', 'off', '', null, 'maybe']) assert.equal(planBody(raw({ model: 'm', stream }), '/v1/chat/completions', 'm', {}).stream, false, String(stream));
  // Usage asked for as "true": the client asked for it, so it is not removed from what the client gets.
  assert.equal(planBody(raw({ model: 'm', stream: 'true', stream_options: { include_usage: 'true' } }), '/v1/chat/completions', 'm', {}).injected, false);
});

test('usage read from the tail of a JSON answer (nested braces and strings)', () => {
  const text = JSON.stringify({ choices: [{ message: { content: 'a "usage": {x} }' } }], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }, kv: null });
  assert.deepEqual(usageFromJsonText(text), { prompt: 7, completion: 3 });
  assert.deepEqual(usageFromJsonText(text.slice(40)), { prompt: 7, completion: 3 });
  assert.deepEqual(usageFromJsonText('{"usage":{"input_tokens":4,"output_tokens":2}}'), { prompt: 4, completion: 2 });
  assert.equal(usageFromJsonText('{"usage": null}'), null);
});

test('JSON answer: observed, bytes unchanged', async () => {
  const body = JSON.stringify({ id: 'x', usage: { prompt_tokens: 12, completion_tokens: 8 } });
  const m = new Meter(false, 100);
  const out = await drain(m.attach(response(200, 'application/json', [body.slice(0, 10), body.slice(10)])));
  assert.equal(out, body);
  assert.deepEqual(m.result(), { prompt: 12, completion: 8, estimated: false });
});

test('injected include_usage: the usage event is removed, every other byte reaches the client', async () => {
  const chunk = (t: string) => ({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: t } }] });
  const usage = { id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } };
  const wanted = ev(chunk('héllo')) + ev(chunk(' wörld')) + 'data: [DONE]\n\n';
  const upstream = ev(chunk('héllo')) + ev(chunk(' wörld')) + ev(usage) + 'data: [DONE]\n\n';
  // Split everywhere, including inside a multi-byte character.
  const bytes = Buffer.from(upstream);
  const pieces = [bytes.subarray(0, 37), bytes.subarray(37, 38), bytes.subarray(38, 120), bytes.subarray(120)];
  const m = new Meter(true, 50);
  const out = await drain(m.attach(response(200, 'text/event-stream', pieces)));
  assert.equal(out, wanted);
  assert.ok(!out.includes('"usage"'));
  assert.deepEqual(m.result(), { prompt: 5, completion: 2, estimated: false });
});

test('a stream that asked for usage itself is only observed: the client gets the usage event', async () => {
  const usage = { choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } };
  const text = ev({ choices: [{ delta: { content: 'a' } }] }) + ev(usage) + 'data: [DONE]\n\n';
  const m = new Meter(false, 50);
  const res = response(200, 'text/event-stream', [text]);
  const piped = m.attach(res);
  assert.equal(piped, res, 'the response itself is piped: no transform in the path');
  assert.equal(await drain(piped), text);
  assert.deepEqual(m.result(), { prompt: 5, completion: 2, estimated: false });
});

test('a /v1/responses stream whose response.completed event is far over 64 KB: its usage still counts', async () => {
  const long = 'x'.repeat(100_000);
  const completed = { type: 'response.completed', response: { id: 'r', output: [{ type: 'message', content: [{ type: 'output_text', text: long }] }], usage: { input_tokens: 10, output_tokens: 25_000, total_tokens: 25_010 } } };
  const text = 'event: response.output_text.delta\n' + ev({ type: 'response.output_text.delta', delta: 'x' }) + 'event: response.completed\n' + ev(completed);
  // Split in 16 KB pieces, as the socket delivers it.
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += 16_384) chunks.push(text.slice(i, i + 16_384));
  const m = new Meter(false, 40);
  assert.equal(await drain(m.attach(response(200, 'text/event-stream', chunks))), text);
  assert.deepEqual(m.result(), { prompt: 10, completion: 25_000, estimated: false });
});

test('a stream without any usage: estimated and marked', async () => {
  const text = ev({ choices: [{ delta: { content: 'a' } }] }) + ev({ choices: [{ delta: { content: 'b' } }] }) + 'data: [DONE]\n\n';
  const m = new Meter(false, 40);
  await drain(m.attach(response(200, 'text/event-stream', [text])));
  assert.deepEqual(m.result(), { prompt: 10, completion: 2, estimated: true });
});

test('an error answer counts no tokens and is not an estimate', async () => {
  const m = new Meter(false, 40);
  await drain(m.attach(response(400, 'application/json', ['{"error":{}}'])));
  assert.deepEqual(m.result(), { prompt: 0, completion: 0, estimated: false });
});

test('a stream that fails after it started (vLLM\'s error event under HTTP 200): failed, no tokens estimated, the event passed on', async () => {
  const error = { error: { message: 'EngineCore encountered an issue', type: 'InternalServerError', param: null, code: 500 } };
  for (const injected of [false, true]) {
    const m = new Meter(injected, 400);
    const body = ev({ choices: [{ delta: { content: 'a' } }] }) + `data: ${JSON.stringify(error, null, 1).replace(/\n/g, '')}\n\n` + 'data: [DONE]\n\n';
    const out = await drain(m.attach(response(200, 'text/event-stream', [body])));
    assert.equal(out, body, 'the client sees the error event as vLLM sent it');
    assert.equal(m.failed, true);
    assert.deepEqual(m.result(), { prompt: 0, completion: 0, estimated: false });
  }
  const ok = new Meter(false, 400);
  await drain(ok.attach(response(200, 'text/event-stream', [ev({ choices: [{ delta: { content: 'error' } }] }), 'data: [DONE]\n\n'])));
  assert.equal(ok.failed, false, 'content that mentions "error" is content');
});
