// Requests Node's parser refuses or times out: OpenAI-shaped JSON bodies, and timeouts that fire on time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { withTimeout } from '../helpers/wait.js';
import { KEY, KEY_NAME, bearer, raw, request, sha256Hex, startPair, until } from '../helpers/upstream.js';

/** The status line and the parsed JSON body of a raw HTTP answer. */
function parse(text: string): { status: number; type: string | undefined; body: { error: { code: string; type: string; message: string } } } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const type = /\r\ncontent-type: ([^\r]+)/i.exec(head)?.[1];
  return { status, type, body: JSON.parse(body) as { error: { code: string; type: string; message: string } } };
}

describe('requests the HTTP parser refuses', () => {
  it('malformed request line: 400 with a JSON error body', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const r = parse((await raw(pair.port, 'NOT HTTP AT ALL\r\n\r\n')).text);
    assert.equal(r.status, 400);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.error.code, 'bad_request');
    assert.equal(r.body.error.type, 'invalid_request_error');
  });

  it('headers over the limit: 431 with a JSON error body', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const r = parse((await raw(pair.port, `GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\nx-big: ${'a'.repeat(40_000)}\r\n\r\n`)).text);
    assert.equal(r.status, 431);
    assert.equal(r.body.error.code, 'headers_too_large');
  });

  it('garbage pipelined behind a stream closes the connection instead of writing an answer into the stream', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 50, intervalMs: 20 } });
    t.after(() => pair.close());
    const body = JSON.stringify({ model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const socket = net.connect(pair.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // Once the stream's head is out, the next "request" on this connection is not HTTP.
      if (chunks.length === 1) socket.write('NOT HTTP AT ALL\r\n\r\n');
    });
    socket.write(head);
    await new Promise((resolve) => socket.on('close', resolve));
    const text = Buffer.concat(chunks).toString('utf8');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.equal(text.indexOf('HTTP/1.1', 1), -1, `a second status line inside the stream:\n${text}`);
  });

  it('garbage pipelined behind a request still waiting for its answer closes the connection; no 400 is read as that answer', async (t) => {
    const pair = await startPair({}, { behaviour: { headerDelayMs: 300 } });
    t.after(() => pair.close());
    const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    const request = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const r = await raw(pair.port, `${request}NOT HTTP AT ALL\r\n\r\n`, { keepOpen: true });
    assert.doesNotMatch(r.text, /^HTTP\/1\.1 400 /, `the bad request's 400 came as the first request's answer:\n${r.text}`);
    assert.equal(r.text, '');
  });

  it('proxy.headers_timeout fires within about a second, not after Node\'s 30 s check interval', async (t) => {
    const pair = await startPair({ headersTimeout: 1, bodyTimeout: 2 });
    t.after(() => pair.close());
    // Half a request head, then nothing: the proxy must answer 408 and close.
    const { text, ms } = await raw(pair.port, 'GET /v1/models HTTP/1.1\r\nhost: x\r\n', { keepOpen: true });
    const r = parse(text);
    assert.equal(r.status, 408);
    assert.equal(r.body.error.code, 'request_timeout');
    // 1 s timeout, checked every 250 ms: generous bound for a loaded machine, far below Node's default 30 s.
    assert.ok(ms < 10_000, `408 after ${Math.round(ms)} ms`);
  });

  it('proxy.body_timeout fires too for a body that stops coming', async (t) => {
    const pair = await startPair({ headersTimeout: 1, bodyTimeout: 2 });
    t.after(() => pair.close());
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`;
    const { text, ms } = await raw(pair.port, head, { keepOpen: true });
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(ms < 12_000, `408 after ${Math.round(ms)} ms`);
    // Logged and counted as the 408 it got, not as a client that left (499).
    await until(() => pair.lines.some((l) => / POST \/v1\/chat\/completions .* 408 /.test(l)), 5000, `the 408 in the access log:\n${pair.lines.join('\n')}`);
    assert.ok(!pair.lines.some((l) => / 499 /.test(l)), pair.lines.join('\n'));
  });

  it('a chunked body that breaks off into garbage is logged as the 400 it got, not as 499', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"mod\r\nZZZ not a chunk size\r\n`;
    const { text } = await raw(pair.port, head, { keepOpen: true });
    assert.match(text, /^HTTP\/1\.1 400 /);
    await until(() => pair.lines.some((l) => / POST \/v1\/chat\/completions .* 400 /.test(l)), 5000, `the 400 in the access log:\n${pair.lines.join('\n')}`);
  });

  it('a request refused before its head was read (431, 400, 408) is in the access log and the request metrics, once, with the bytes it got', async (t) => {
    const pair = await startPair({ headersTimeout: 1, bodyTimeout: 2 });
    t.after(() => pair.close());
    const answers = [
      (await raw(pair.port, `GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\nx-big: ${'a'.repeat(40_000)}\r\n\r\n`)).text,
      (await raw(pair.port, 'NOT HTTP AT ALL\r\n\r\n')).text,
      (await raw(pair.port, 'GET /v1/models HTTP/1.1\r\nhost: x\r\n', { keepOpen: true })).text,
    ];
    const refused = (l: string) => / - - - model=- \d{3} /.test(l);
    await until(() => pair.lines.filter(refused).length === 3, 5000, `three refusals in the access log:\n${pair.lines.join('\n')}`);
    const logged = pair.lines.filter(refused);
    for (const [i, status] of [431, 400, 408].entries()) {
      // No key, method, path or model is known before the head is read: dashes, as nginx logs such a request.
      const line = logged[i]!;
      assert.match(line, new RegExp(`\\| \\d{4}-\\S+Z - - - model=- ${status} ${Buffer.byteLength(answers[i]!)}B \\d+ms ttfb=\\d+ms id=\\S+$`), line);
    }
    const page = await request(pair.port, '/metrics', { headers: bearer });
    for (const status of [431, 400, 408]) assert.match(page.text, new RegExp(`^llmserve_requests_total\\{key="-",model="-",status="${status}"\\} 1$`, 'm'));
    // The key was never checked: these are not a key's requests.
    assert.doesNotMatch(page.text, new RegExp(`key="${KEY_NAME}",model="-",status="4`));
  });

  it('an HTTP/1.1 request without Host: 400 in OpenAI\'s shape, with a request id, in the access log; HTTP/1.0 needs none', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    // Node's own check answered a bare 400 (no body, no request id) that the access log never saw.
    const { text } = await raw(pair.port, `GET /v1/models HTTP/1.1\r\nauthorization: Bearer ${KEY}\r\n\r\n`, { keepOpen: true });
    const r = parse(text);
    assert.equal(r.status, 400);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.error.code, 'bad_request');
    assert.match(r.body.error.message, /Host header/);
    assert.match(text, /\r\nconnection: close\r\n/i);
    const id = /\r\nx-request-id: ([^\r]+)/i.exec(text)?.[1];
    assert.ok(id !== undefined, text);
    await until(() => pair.lines.some((l) => l.includes(`id=${id}`)), 5000, `the 400 in the access log:\n${pair.lines.join('\n')}`);
    assert.match(pair.lines.find((l) => l.includes(`id=${id}`))!, / GET \/v1\/models model=- 400 /);
    // A request with a body gets the same answer (one whose body is still coming is read and dropped first: linger.ts).
    const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    const post = await raw(pair.port, `POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, { keepOpen: true });
    assert.equal(parse(post.text).status, 400);
    // HTTP/1.0 has no Host requirement: served.
    const old = await raw(pair.port, `GET /v1/models HTTP/1.0\r\nauthorization: Bearer ${KEY}\r\n\r\n`, { keepOpen: true });
    assert.match(old.text, /^HTTP\/1\.1 200 /, old.text);
  });

  it('an Expect other than 100-continue: 417 in OpenAI\'s shape, logged, and the connection serves the next request', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    // Node answered it itself: a bare 417 with an empty body, no request id, no access-log line.
    const refused = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\nexpect: foo\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`;
    const next = `GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\nconnection: close\r\n\r\n`;
    const { text } = await raw(pair.port, refused + next, { keepOpen: true });
    const first = text.slice(0, text.indexOf('HTTP/1.1', 1));
    const r = parse(first);
    assert.equal(r.status, 417);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.error.code, 'expectation_failed');
    assert.match(r.body.error.message, /^Expect: foo is not supported; only 100-continue is/);
    const id = /\r\nx-request-id: ([^\r]+)/i.exec(first)?.[1];
    assert.ok(id !== undefined, text);
    assert.match(text.slice(first.length), /^HTTP\/1\.1 200 /, text);
    await until(() => pair.lines.some((l) => l.includes(`id=${id}`)), 5000, `the 417 in the access log:\n${pair.lines.join('\n')}`);
    assert.match(pair.lines.find((l) => l.includes(`id=${id}`))!, / POST \/v1\/chat\/completions model=- 417 /);
    assert.deepEqual(pair.upstream.requests.map((q) => q.path), ['/v1/models']);
  });

  it('an HTTP/2 client with prior knowledge gets a GOAWAY it can read (HTTP_1_1_REQUIRED), and the operator a warning', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    // Before: an HTTP/1.1 400 in answer to the HTTP/2 preface, which such a client cannot parse (curl: "Empty reply").
    const session = http2.connect(`http://127.0.0.1:${pair.port}`);
    t.after(() => session.destroy());
    session.on('error', () => {});
    const goaway = new Promise<{ code: number; text: string }>((resolve) => session.once('goaway', (code: number, _last: number, data?: Buffer) => resolve({ code, text: data?.toString('latin1') ?? '' })));
    const stream = session.request({ ':path': '/v1/models', authorization: `Bearer ${KEY}` });
    stream.on('error', () => {});
    stream.end();
    const got = await withTimeout(goaway, 5000, 'a GOAWAY frame');
    assert.equal(got.code, http2.constants.NGHTTP2_HTTP_1_1_REQUIRED);
    assert.match(got.text, /HTTP\/1\.1/);
    await until(() => pair.lines.some((l) => / PRI \* model=- 505 /.test(l)), 5000, `the refusal in the access log:\n${pair.lines.join('\n')}`);
    assert.ok(pair.lines.some((l) => /warning: an HTTP\/2 client \(prior knowledge, h2c\) reached the proxy/.test(l)), pair.lines.join('\n'));
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('CONNECT (a client using llmserve as a forward proxy) gets a 405 in OpenAI\'s shape and a log line, not a dropped connection', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const { text } = await raw(pair.port, `CONNECT api.openai.com:443 HTTP/1.1\r\nhost: api.openai.com:443\r\nauthorization: Bearer ${KEY}\r\n\r\n`, { keepOpen: true });
    const r = parse(text);
    assert.equal(r.status, 405);
    assert.equal(r.body.error.code, 'method_not_allowed');
    assert.match(r.body.error.message, /not a forward proxy/);
    await until(() => pair.lines.some((l) => / CONNECT api\.openai\.com:443 .*405 /.test(l)), 5000, `the 405 in the access log:\n${pair.lines.join('\n')}`);
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('a request target in absolute-form (http://host/path) is served as its path, as RFC 9112 requires', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const { text } = await raw(pair.port, `GET http://127.0.0.1:${pair.port}/v1/models?x=1 HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${KEY}\r\nconnection: close\r\n\r\n`, { keepOpen: true });
    assert.match(text, /^HTTP\/1\.1 200 /, text);
    assert.deepEqual(pair.upstream.requests.map((q) => q.url), ['/v1/models?x=1']);
    // Still the allowlist's: a path outside it in absolute-form is refused as it is in origin-form.
    const outside = await raw(pair.port, `POST HTTP://127.0.0.1/collective_rpc HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${KEY}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, { keepOpen: true });
    assert.equal(parse(outside.text).status, 404, outside.text);
    assert.equal(pair.upstream.requests.length, 1);
  });

  it('a refusal on a connection whose request is under way is logged by that request only (not twice)', async (t) => {
    const pair = await startPair({ headersTimeout: 1, bodyTimeout: 2 });
    t.after(() => pair.close());
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`;
    await raw(pair.port, head, { keepOpen: true });
    await until(() => pair.lines.some((l) => / 408 /.test(l)), 5000, `the 408 in the access log:\n${pair.lines.join('\n')}`);
    await until(() => pair.proxy.inflight() === 0, 2000, 'the request to end');
    assert.equal(pair.lines.filter((l) => / 408 /.test(l)).length, 1, pair.lines.join('\n'));
  });
});

describe('Connection: close', () => {
  it('a request with Connection: close (or HTTP/1.0) and bytes pipelined behind it gets its answer; the rest is ignored, as RFC 9112 9.6 says', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    const first = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
    const { text } = await raw(pair.port, first + MODELS, { keepOpen: true });
    assert.match(text, /^HTTP\/1\.1 200 /, text);
    assert.match(text, /"chat\.completion"/, text);
    assert.equal((text.match(/HTTP\/1\.1 /g) ?? []).length, 1, text);
    const old = await raw(pair.port, `GET /v1/models HTTP/1.0\r\nauthorization: Bearer ${KEY}\r\n\r\n` + MODELS, { keepOpen: true });
    assert.match(old.text, /^HTTP\/1\.1 200 /, old.text);
    await until(() => pair.lines.filter((l) => / 200 /.test(l)).length === 2, 5000, `two 200s in the access log:\n${pair.lines.join('\n')}`);
    assert.ok(!pair.lines.some((l) => / 499 /.test(l)), pair.lines.join('\n'));
    assert.deepEqual(pair.upstream.requests.map((q) => q.url), ['/v1/chat/completions', '/v1/models']);
  });

  it('a client that leaves after a Connection: close request with bytes pipelined behind it is still seen: the upstream call stops', async (t) => {
    // vLLM takes 3 s before its first event (a long prefill): the client leaves meanwhile.
    const pair = await startPair({}, { behaviour: { firstEventDelayMs: 3000, events: 20, intervalMs: 100 } });
    t.after(() => pair.close());
    const body = JSON.stringify({ model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
    const { socket } = rawConnection(t, pair.port);
    socket.write(head + MODELS);
    const upstream = await pair.upstream.waitForRequest((r) => r.url === '/v1/chat/completions', 5000);
    socket.destroy();
    // Within a second (the first event is 3 s away): before, the paused socket hid the client's close until then.
    await pair.upstream.waitForClientClose(upstream, 1000);
  });

  it('a request with Upgrade (websocket, h2c) is answered in HTTP/1.1 and its connection closed after: a request pipelined behind it is not left unanswered on an open connection', async (t) => {
    // Node's parser stops at an Upgrade head and drops what follows when nothing takes the upgrade; the client, seeing
    // the connection close, sends its unanswered request again on another.
    const pair = await startPair();
    t.after(() => pair.close());
    const upgrade = `GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nauthorization: Bearer ${KEY}\r\n\r\n`;
    const { text } = await withTimeout(raw(pair.port, upgrade + MODELS, { keepOpen: true }), 5000, 'the connection to close after the answer');
    assert.match(text, /^HTTP\/1\.1 200 /, text);
    assert.match(text, /\r\nconnection: close\r\n/i, text);
  });
});

describe('request smuggling', () => {
  it('a Content-Length past the 2,000th header still frames the body the proxy sees: a body-bearing OPTIONS is no key-free pre-flight, nothing smuggled reaches vLLM', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    // Node keeps 2,000 headers in req.headers by default but frames the body by all of them (12 KB here, under 16 KB).
    const filler = 'a: b\r\n'.repeat(2000);
    const smuggled = 'GET /server_info HTTP/1.1\r\nhost: x\r\n\r\n';
    const preflight = `OPTIONS /v1/chat/completions HTTP/1.1\r\nhost: x\r\norigin: http://elsewhere.example\r\naccess-control-request-method: POST\r\n${filler}content-length: ${smuggled.length}\r\nconnection: close\r\n\r\n${smuggled}`;
    const first = await raw(pair.port, preflight, { keepOpen: true });
    assert.match(first.text, /^HTTP\/1\.1 401 /, first.text);
    const keyed = `GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\n${filler}content-length: ${smuggled.length}\r\nconnection: close\r\n\r\n${smuggled}`;
    const second = await raw(pair.port, keyed, { keepOpen: true });
    assert.match(second.text, /^HTTP\/1\.1 200 /, second.text);
    // A request after them on the pooled connection: anything smuggled would have reached vLLM before it.
    assert.equal((await request(pair.port, '/v1/models', { headers: bearer })).status, 200);
    await until(() => pair.upstream.requests.length >= 2, 5000, 'the two model lists upstream');
    assert.deepEqual(pair.upstream.requests.map((q) => q.url), ['/v1/models', '/v1/models']);
    assert.equal(pair.upstream.requests[0]!.headers['content-length'], String(smuggled.length), 'the body is framed upstream as it was here');
  });
});

/** A model list request with the key, as raw bytes. */
const MODELS = `GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\n\r\n`;

/** A raw chat completion request with the test key, streamed or not, for writing several on one connection. */
function chatRequest(stream: boolean): string {
  const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream });
  return `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A raw connection to the proxy, closed after the test, and all it has read so far. */
function rawConnection(t: { after: (fn: () => unknown) => void }, port: number): { socket: net.Socket; text: () => string } {
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  return { socket, text: () => text };
}

describe('pipelined requests', () => {
  it('the access log counts each response\'s own bytes, not those of the response still being written ahead of it', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 5, intervalMs: 5 } });
    t.after(() => pair.close());
    const stream = chatRequest(true);
    const conn = rawConnection(t, pair.port);
    // The two model lists arrive while the stream is still being written: their answers wait behind it.
    conn.socket.write(stream + MODELS + MODELS);
    await until(() => conn.text().split('"object":"list"').length === 3 && conn.text().endsWith('}'), 5000, 'the three answers');
    const text = conn.text();
    const starts = [...text.matchAll(/HTTP\/1\.1 \d{3} /g)].map((m) => m.index);
    assert.equal(starts.length, 3, text);
    const onTheWire = starts.map((at, i) => (starts[i + 1] ?? text.length) - at);
    const access = () => pair.lines.filter((l) => / (POST \/v1\/chat\/completions|GET \/v1\/models) /.test(l));
    await until(() => access().length === 3, 5000, 'three access-log lines');
    assert.deepEqual(access().map((l) => Number(/ (\d+)B /.exec(l)?.[1])), onTheWire, access().join('\n'));
  });

  it('pipelined requests run one at a time, as nginx runs them: one queued behind a stream reaches vLLM once that stream has ended', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 30, intervalMs: 20 } });
    t.after(() => pair.close());
    const stream = chatRequest(true);
    const conn = rawConnection(t, pair.port);
    conn.socket.write(stream + stream + MODELS);
    // The first stream flows; the second waits for its turn, not generating in vLLM meanwhile.
    await until(() => conn.text().split('data: {').length > 5, 5000, 'the first stream flowing');
    assert.equal(pair.upstream.requests.length, 1, 'only the first request reached vLLM while its stream flows');
    await until(() => conn.text().split('data: [DONE]').length === 3 && conn.text().endsWith('}'), 10_000, 'both streams and the model list');
    assert.equal(pair.upstream.requests.length, 3, 'the second stream and the model list, once the first ended');
  });

  it('a request with a body larger than Node holds, pipelined behind a stream, is read at once: body_timeout does not cut the connection', async (t) => {
    // A 2 s stream and body_timeout 1 s: a body left unread until the stream's end would time out and take the stream.
    const pair = await startPair({ bodyTimeout: 1 }, { behaviour: { events: 40, intervalMs: 50 } });
    t.after(() => pair.close());
    const big = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] });
    const bigRequest = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(big)}\r\n\r\n${big}`;
    const conn = rawConnection(t, pair.port);
    conn.socket.write(chatRequest(true) + bigRequest);
    await until(() => conn.text().includes('data: [DONE]') && conn.text().split('HTTP/1.1 200 ').length === 3 && conn.text().endsWith('}'), 10_000, 'the stream to its end and the second answer');
  });

  it('thirty requests pipelined in one write are all answered, without a "possible EventEmitter memory leak" warning', async (t) => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    const pair = await startPair();
    t.after(() => pair.close());
    const conn = rawConnection(t, pair.port);
    conn.socket.write(MODELS.repeat(30));
    await until(() => conn.text().split('HTTP/1.1 200 ').length === 31 && conn.text().endsWith('}'), 5000, 'thirty answers');
    // Node emits its warning on the next tick after the 11th listener.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
  });

  it('requests queued behind a stream end when their client disconnects: in-flight back to 0, the key\'s slots freed, upstream closed', async (t) => {
    const pair = await startPair({ keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY), policy: { maxParallel: 3 } }] }, { behaviour: { events: 500, intervalMs: 20 } });
    t.after(() => pair.close());
    const socket = net.connect(pair.port, '127.0.0.1');
    socket.on('error', () => {});
    // A long stream, then two requests pipelined behind it (their answers wait for the stream's end), and a wrong key.
    socket.write(chatRequest(true) + chatRequest(false) + chatRequest(true) + chatRequest(false).replace(KEY, 'sk-wrong-key-0123456789'));
    // Only the stream reaches vLLM: the others wait for their turn (pipelined requests run one at a time).
    await until(() => pair.proxy.inflight() === 4 && pair.upstream.requests.length === 1, 5000, 'the four requests in flight, the first of them sent to vLLM');
    socket.destroy();
    await until(() => pair.proxy.inflight() === 0, 5000, 'every exchange of the closed connection to end');
    // The stream stops generating, and none of the queued requests ever reached vLLM.
    await pair.upstream.waitForClientClose(pair.upstream.requests[0]!, 5000);
    assert.equal(pair.upstream.requests.length, 1);
    // The three max_parallel slots are free again: three requests at once are admitted.
    const replies = await Promise.all([1, 2, 3].map(() => request(pair.port, '/v1/chat/completions', { headers: bearer, body: { model: 'test-model', messages: [] } })));
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200]);
  });
});
