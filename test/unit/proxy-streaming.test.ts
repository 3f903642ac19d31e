// Streams: no buffering, early headers, client aborts reach vLLM, upstream deaths reach the client, drain,
// hop-by-hop headers and the upstream connection pool.
import assert from 'node:assert/strict';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { KEY, bearer, raw, request, startPair, until } from '../helpers/upstream.js';
import { withTimeout } from '../helpers/wait.js';

const streamBody = JSON.stringify({ model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });

/** Opens a streamed chat completion; counts `data:` events as they arrive. */
function openStream(port: number): Promise<{ req: ClientRequest; res: IncomingMessage; events: () => number; text: () => string; headersAt: number }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { ...bearer, 'content-type': 'application/json', 'content-length': Buffer.byteLength(streamBody) } },
      (res) => {
        const headersAt = performance.now();
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('error', () => {});
        resolve({ req, res, events: () => text.split('data: ').length - 1, text: () => text, headersAt });
      },
    );
    req.on('error', () => {});
    req.once('error', reject);
    req.end(streamBody);
  });
}

/** Resolves when the response ends or breaks: `true` for a clean end, `false` for an error or an early close. */
function outcome(res: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    res.on('end', () => resolve(res.complete));
    res.on('error', () => resolve(false));
    res.on('close', () => resolve(res.complete));
  });
}

describe('streaming', () => {
  it('streams to an HTTP/1.0 client (nginx\'s default proxy_http_version) without chunked framing, ended by the close', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 3 } });
    t.after(() => pair.close());
    const request10 = `POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(streamBody)}\r\n\r\n${streamBody}`;
    const { text } = await withTimeout(raw(pair.port, request10, { keepOpen: true }), 10_000, 'the proxy to close the HTTP/1.0 stream at its end');
    const [head, body] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(head, /transfer-encoding/i);
    assert.match(head, /\r\nx-accel-buffering: no(\r\n|$)/i);
    // The events as the backend sent them, with no chunk sizes between them.
    assert.equal(body.split('data: ').length - 1, 4, body);
    assert.match(body, /^data: [^\r]*\n\n/);
    assert.match(body, /data: \[DONE\]\n\n$/);
  });

  it('passes events through with X-Accel-Buffering: no, headers before the first event', async (t) => {
    // The first event 3 s after the request: the head's arrival before it is not a race with a loaded machine.
    const pair = await startPair({}, { behaviour: { firstEventDelayMs: 3000, events: 3 } });
    t.after(() => pair.close());
    const s = await openStream(pair.port);
    // Item 7: the head must arrive while vLLM is still in prefill (no event sent yet).
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.equal(rec.eventsSent, 0, 'response headers waited for the first event');
    assert.equal(s.res.headers['x-accel-buffering'], 'no');
    assert.match(s.res.headers['content-type'] ?? '', /^text\/event-stream/);
    assert.equal(await outcome(s.res), true);
    assert.equal(s.events(), 4);
    assert.match(s.text(), /data: \[DONE\]\n\n$/);
    // JSON answers do not get the header.
    const json = await request(pair.port, '/v1/models', { headers: bearer });
    assert.equal(json.headers['x-accel-buffering'], undefined);
  });

  it('a client abort after three events closes the upstream request at once', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 100000, intervalMs: 10 } });
    t.after(() => pair.close());
    const s = await openStream(pair.port);
    await until(() => s.events() >= 3, 5000, 'three events');
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    const abortedAt = performance.now();
    s.req.destroy();
    const closedAt = await pair.upstream.waitForClientClose(rec, 5000);
    const ms = closedAt - abortedAt;
    t.diagnostic(`upstream saw the client abort after ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `upstream closed ${ms} ms after the client abort`);
    await until(() => pair.proxy.inflight() === 0, 2000, 'no request in flight');
    assert.ok(pair.lines.some((l) => / 499 /.test(l)), pair.lines.join('\n'));
  });

  it('a client abort before the first byte also cancels the upstream request', async (t) => {
    const pair = await startPair({}, { behaviour: { firstEventDelayMs: 0, headerDelayMs: 60_000 } });
    t.after(() => pair.close());
    const req = http.request({ host: '127.0.0.1', port: pair.port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { ...bearer, 'content-length': Buffer.byteLength(streamBody) } });
    req.on('error', () => {});
    req.end(streamBody);
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    req.destroy();
    await pair.upstream.waitForClientClose(rec, 2000);
  });

  it('an upstream that dies mid-stream ends the client stream with an error, without hanging', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 100, intervalMs: 5, dieAfterEvents: 2 } });
    t.after(() => pair.close());
    const s = await openStream(pair.port);
    const result = await Promise.race([outcome(s.res), new Promise<'hang'>((r) => setTimeout(() => r('hang'), 3000).unref())]);
    assert.equal(result, false, 'the client must see a broken stream, not a clean end or a hang');
    assert.ok(s.events() >= 2 && s.events() < 100);
    // Logged as the backend's failure (502), not as a client that left (499).
    await until(() => pair.lines.some((l) => /POST \/v1\/chat\/completions /.test(l)), 5000, 'the access-log line');
    const line = pair.lines.find((l) => /POST \/v1\/chat\/completions /.test(l)) ?? '';
    assert.match(line, / 502 /, line);
  });

  it('drain waits for an in-flight stream to finish, then returns 0; refuses new requests meanwhile', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 10, intervalMs: 20 } });
    t.after(() => pair.close());
    const s = await openStream(pair.port);
    await until(() => s.events() >= 1, 5000, 'the first event');
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    const done = outcome(s.res);
    const drained = pair.proxy.drain(10_000);
    const refused = await request(pair.port, '/v1/models', { headers: bearer });
    assert.equal(refused.status, 503);
    assert.ok(refused.headers['retry-after']);
    assert.equal(await drained, 0);
    // When drain returns, the whole stream went through the proxy (the client may still be reading it).
    assert.equal(rec.eventsSent, 10, 'drain returned before the stream finished');
    assert.equal(rec.clientClosedAt, null, 'the stream was cut');
    assert.equal(await done, true);
    assert.match(s.text(), /data: \[DONE\]\n\n$/);
  });

  it('drain gives up after its timeout and reports what remains', async (t) => {
    const pair = await startPair({}, { behaviour: { events: 100000, intervalMs: 10 } });
    t.after(() => pair.close());
    const s = await openStream(pair.port);
    await until(() => s.events() >= 1, 5000, 'the first event');
    assert.equal(await pair.proxy.drain(50), 1);
    s.req.destroy();
  });

  it('keeps the headers the proxy judged a request by, even when the client lists them in Connection', async (t) => {
    // Listed, Content-Type was dropped after the proxy had left a text/plain body unread: vLLM reads a body with no
    // type as JSON, past the model allowlist and the usage count. The proxy's own X-Request-Id went the same way.
    const pair = await startPair();
    t.after(() => pair.close());
    const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    const res = await request(pair.port, '/v1/chat/completions', { method: 'POST', body, headers: { ...bearer, 'content-type': 'text/plain', connection: 'content-type, content-encoding, x-request-id, x-hop', 'x-hop': '1' } });
    assert.equal(res.status, 200);
    const seen = pair.upstream.requests[0]!.headers;
    assert.equal(seen['content-type'], 'text/plain');
    assert.equal(seen['x-request-id'], res.headers['x-request-id']);
    assert.equal(seen['x-hop'], undefined, 'other listed headers are still dropped');
  });

  it('drops hop-by-hop headers both ways and pools upstream connections', async (t) => {
    const pair = await startPair({}, { behaviour: { extraHeaders: { 'keep-alive': 'timeout=5', 'x-hop-resp': '1', connection: 'x-hop-resp', 'proxy-authenticate': 'Basic', 'x-end-to-end': 'yes' } } });
    t.after(() => pair.close());
    const headers = { ...bearer, connection: 'close, x-hop-req', 'x-hop-req': '1', 'keep-alive': 'timeout=9', te: 'trailers', 'proxy-authorization': `Basic ${KEY}`, 'proxy-connection': 'keep-alive', 'x-end-to-end': 'yes' };
    const first = await request(pair.port, '/v1/models', { headers });
    const second = await request(pair.port, '/v1/models', { headers });
    assert.equal(first.status, 200);
    const [a, b] = pair.upstream.requests;
    assert.ok(a && b);
    for (const name of ['x-hop-req', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) assert.equal(a.headers[name], undefined, name);
    assert.equal(a.headers['x-end-to-end'], 'yes');
    // The client's `Connection: close` must not reach the backend (item 6) and the agent keeps the socket.
    assert.equal(a.headers.connection, 'keep-alive');
    assert.equal(a.remotePort, b.remotePort, 'the second request opened a new upstream connection');
    for (const name of ['x-hop-resp', 'keep-alive', 'proxy-authenticate']) assert.equal(second.headers[name], undefined, name);
    assert.equal(second.headers['x-end-to-end'], 'yes');
  });
});
