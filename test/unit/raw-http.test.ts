// check's raw-socket GET: response parsing (content-length, chunked, until close) and live use against node:http.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { parseResponse, rawGet } from '../../src/probes/raw-http.js';

test('parses content-length, chunked and close-delimited answers; incomplete ones wait', () => {
  const cl = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
  assert.deepEqual(parseResponse(cl), { ok: true, status: 200, error: null, body: 'hello' });
  assert.equal(parseResponse(cl.subarray(0, cl.length - 1)), null, 'body not complete yet');
  const chunked = Buffer.from('HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
  assert.deepEqual(parseResponse(chunked), { ok: false, status: 503, error: null, body: 'abcde' });
  assert.equal(parseResponse(chunked.subarray(0, 40)), null);
  const close = Buffer.from('HTTP/1.0 200 OK\r\n\r\nuntil close');
  assert.equal(parseResponse(close), null);
  assert.equal(parseResponse(close, true)?.body, 'until close');
  assert.equal(parseResponse(Buffer.from('garbage\r\n\r\n'))?.error, 'malformed HTTP status line');
  // A server that dies (or is killed, as a hung vLLM is) before answering sent nothing: not a malformed answer.
  assert.equal(parseResponse(Buffer.alloc(0), true)?.error, 'connection closed without an answer');
  assert.equal(parseResponse(Buffer.from('HTTP/1.1 200'), true)?.error, 'malformed HTTP answer');
});

test('rawGet against a real server: status, body, headers sent, refused port, timeout', async (t) => {
  let seen: http.IncomingHttpHeaders = {};
  const server = http.createServer((req, res) => {
    seen = req.headers;
    if (req.url === '/hang') return;
    res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const port = (server.address() as { port: number }).port;
  const ok = await rawGet(`http://127.0.0.1:${port}/v1/models?x=1`, { timeoutMs: 2000, headers: { authorization: 'Bearer k' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.ok, true);
  assert.deepEqual(JSON.parse(ok.body), { path: '/v1/models?x=1' });
  assert.equal(seen.authorization, 'Bearer k');
  const missing = await rawGet(`http://127.0.0.1:${port}/missing`, { timeoutMs: 2000 });
  assert.equal(missing.status, 404);
  assert.equal(missing.ok, false);
  const hang = await rawGet(`http://127.0.0.1:${port}/hang`, { timeoutMs: 100 });
  assert.match(hang.error ?? '', /timed out after 100 ms/);
  server.close();
  const refused = await rawGet(`http://127.0.0.1:${port}/`, { timeoutMs: 2000 });
  assert.equal(refused.error, 'ECONNREFUSED');
});
