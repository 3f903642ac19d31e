// Size caps, backend failures (502/504), and the model-alias rewrite.
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { lingerAfterAnswer } from '../../src/proxy/linger.js';
import { withTimeout } from '../helpers/wait.js';
import { describe, it } from 'node:test';
import { bearer, request, startPair, until } from '../helpers/upstream.js';

const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

/** Sends a chunked body of `chunks` x `size` bytes, stopping as soon as a response arrives. */
function sendChunked(port: number, size: number, chunks: number, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { ...bearer, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    let answered = false;
    req.on('error', reject);
    if (body !== undefined) {
      // Two pieces, so that the body really travels in several chunks.
      req.write(body.subarray(0, 5));
      req.end(body.subarray(5));
      return;
    }
    let sent = 0;
    const pump = () => {
      while (!answered && sent < chunks) {
        sent++;
        if (!req.write(Buffer.alloc(size, 0x61))) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

/**
 * A client in a process of its own that sends a whole body of BYTES, then reads the answer: as undici (fetch, OpenAI's
 * JS SDK) does in effect, where a failed write ends the request whatever answer has come (it failed 8 MB and larger
 * uploads with "Connection error." that way). Prints what came back and the socket's error as JSON.
 */
const UPLOAD_CLIENT = `
const net = require('node:net');
const [port, auth, bytes, chunked] = process.argv.slice(1);
const socket = net.connect(Number(port), '127.0.0.1');
let text = '';
let error = null;
socket.setEncoding('latin1');
socket.pause();
socket.on('data', (d) => (text += d));
socket.on('error', (err) => (error = err.code || err.message));
socket.on('close', () => console.log(JSON.stringify({ text: text.slice(0, 400), error })));
const n = Number(bytes);
const head = 'POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: ' + auth + '\\r\\nContent-Type: application/json\\r\\n' + (chunked === '1' ? 'Transfer-Encoding: chunked' : 'Content-Length: ' + n) + '\\r\\n\\r\\n';
const body = Buffer.alloc(n, 0x61);
socket.write(chunked === '1' ? Buffer.concat([Buffer.from(head + n.toString(16) + '\\r\\n'), body, Buffer.from('\\r\\n0\\r\\n\\r\\n')]) : Buffer.concat([Buffer.from(head), body]), (err) => err || socket.resume());
`;

/** Runs UPLOAD_CLIENT against the proxy on `port`; resolves with what it got. */
async function uploadWhole(port: number, bytes: number, chunked: boolean): Promise<{ text: string; error: string | null }> {
  const child = spawn(process.execPath, ['-e', UPLOAD_CLIENT, String(port), bearer.authorization, String(bytes), chunked ? '1' : '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, out);
  return JSON.parse(out) as { text: string; error: string | null };
}

describe('limits and failures', () => {
  it('a large body over the cap gets its 413 although the client writes it whole (no reset before the answer is read)', async (t) => {
    const pair = await startPair({ maxBodyBytes: 1_000_000 });
    // Every key metered: a chunked JSON body is read whole by the proxy, and refused while it reads.
    const metered = await startPair({ maxBodyBytes: 1_000_000, usage: { dir: null, track: 'all', flushInterval: 5 } });
    t.after(() => Promise.all([pair.close(), metered.close()]));
    // Declared length (answered before any byte is read), and chunked (answered once the cap is passed).
    for (const [port, chunked] of [[pair.port, false], [pair.port, true], [metered.port, true]] as const) {
      const r = await uploadWhole(port, 24 * 1024 * 1024, chunked);
      assert.match(r.text, /^HTTP\/1\.1 413 /, `chunked ${chunked}: got ${JSON.stringify(r.text.slice(0, 80))}, socket error ${r.error}`);
      assert.match(r.text, /request_too_large/);
    }
    await until(() => pair.proxy.inflight() === 0 && metered.proxy.inflight() === 0, 5000, 'the refused requests to end');
  });


  it('a request pipelined behind a refused one, in its lingering close, is never run (RFC 9112: none after Connection: close)', async (t) => {
    const pair = await startPair({ maxBodyBytes: 1000 });
    t.after(() => pair.close());
    const socket = net.connect(pair.port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    const refused = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer.authorization}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(5000)}`;
    const behind = `GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer.authorization}\r\n\r\n`;
    socket.write(refused + behind);
    await withTimeout(once(socket, 'close'), 5000, 'the connection to close');
    assert.equal(text.match(/HTTP\/1\.1 \d{3}/g)?.join(), 'HTTP/1.1 413', text);
    await until(() => pair.proxy.inflight() === 0, 5000, 'nothing in flight');
    // Neither sent to vLLM nor handled at all (no access-log line, no count against the key).
    assert.deepEqual(pair.upstream.requests.map((r) => r.path), []);
    assert.deepEqual(pair.lines.filter((l) => l.includes('/v1/models')), [], pair.lines.join('\n'));
  });

  it('a lingering close is bounded: a client that stops sending its refused body is cut off after the linger time', async (t) => {
    const server = http.createServer((req, res) => {
      lingerAfterAnswer(res, 300);
      res.writeHead(413, { connection: 'close', 'content-length': '2' });
      res.end('no');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => new Promise((resolve) => server.close(resolve)));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    // Declares 10 MB, sends 1 MB and goes quiet without closing.
    socket.write(`POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
    socket.write(Buffer.alloc(1024 * 1024, 0x61));
    await withTimeout(once(socket, 'close'), 5000, 'the lingering connection to be closed');
    assert.match(text, /^HTTP\/1\.1 413 [^]*\r\n\r\nno$/);
  });

  it('413 on a declared content-length over the cap, without asking the backend', async (t) => {
    const pair = await startPair({ maxBodyBytes: 1000 });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: 'x'.repeat(2000) });
    assert.equal(res.status, 413);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'request_too_large');
    assert.equal(pair.upstream.requests.length, 0);
    const ok = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model') });
    assert.equal(ok.status, 200);
  });

  it('413 on a chunked body that goes over the cap while streaming; the backend never gets it whole', async (t) => {
    const pair = await startPair({ maxBodyBytes: 1000 });
    t.after(() => pair.close());
    const res = await sendChunked(pair.port, 600, 50);
    assert.equal(res.status, 413);
    assert.ok(pair.upstream.requests.every((r) => r.body.length <= 1000), 'the over-limit part reached the backend');
    assert.ok(!pair.upstream.requests.some((r) => r.bodyDone && r.path === '/v1/chat/completions' && r.body.length > 0 && r.eventsSent > 0));
  });

  it('the proxy\'s own refusals are counted in llmserve_rejected_total: a chunked body over the cap, a request while draining', async (t) => {
    const pair = await startPair({ maxBodyBytes: 1000 });
    t.after(() => pair.close());
    assert.equal((await sendChunked(pair.port, 600, 50)).status, 413);
    pair.proxy.setState('draining');
    assert.equal((await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model') })).status, 503);
    pair.proxy.setState('ready');
    await until(() => pair.proxy.inflight() === 0, 5000, 'the refused requests to end');
    const page = (await request(pair.port, '/metrics', { headers: bearer })).text;
    assert.match(page, /^llmserve_rejected_total\{reason="too_large"\} 1$/m, page);
    assert.match(page, /^llmserve_rejected_total\{reason="unavailable"\} 1$/m, page);
  });

  it('a chunked body under the cap streams through', async (t) => {
    const pair = await startPair({ maxBodyBytes: 1000 });
    t.after(() => pair.close());
    const body = Buffer.from(JSON.stringify(chat('test-model')));
    const res = await sendChunked(pair.port, 0, 0, body);
    assert.equal(res.status, 200, res.text);
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.equal(rec.body.toString(), body.toString());
  });

  it('502 JSON when the backend is down', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    await pair.upstream.close();
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model') });
    assert.equal(res.status, 502);
    const body = res.json() as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'bad_gateway');
    assert.equal(body.error.type, 'server_error');
    assert.equal(res.headers['retry-after'], '5');
    // Closed, as the 503s are: an SDK's retry on a new connection may reach a replica that serves. Asked on a
    // keep-alive connection (the helper's own requests ask for a close).
    const agent = new http.Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    const kept = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model'), agent });
    assert.equal(kept.status, 502);
    assert.equal(kept.headers.connection, 'close');
    assert.ok(pair.lines.some((l) => l.includes('ECONNREFUSED')));
    // A burst of failures is one warning and one count, not a line each (the access log has every 502).
    const more = await Promise.all([1, 2, 3, 4, 5].map(() => request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model') })));
    assert.deepEqual(more.map((r) => r.status), [502, 502, 502, 502, 502]);
    await until(() => pair.lines.some((l) => /backend request failed: \d+ more within 1 s \(ECONNREFUSED x\d+\)/.test(l)), 5000, `the burst's count:\n${pair.lines.join('\n')}`);
    const warned = pair.lines.filter((l) => /backend request failed/.test(l));
    assert.ok(warned.length <= 3, warned.join('\n'));
    // Each failure once: a line of its own (the first of a burst) or in a burst's count.
    const counted = warned.reduce((n, l) => n + Number(/: (\d+) more within/.exec(l)?.[1] ?? 1), 0);
    assert.equal(counted, 7, warned.join('\n'));
  });

  it('504 when the backend sends no headers within firstByteTimeout, and the upstream request is cancelled', async (t) => {
    const pair = await startPair({ firstByteTimeout: 0.2 }, { behaviour: { headerDelayMs: 60_000 } });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model') });
    assert.equal(res.status, 504);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'gateway_timeout');
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    await pair.upstream.waitForClientClose(rec, 2000);
  });

  it('the first-byte timeout counts from the request\'s last byte, not while the client is still uploading', async (t) => {
    const pair = await startPair({ firstByteTimeout: 0.3 });
    t.after(() => pair.close());
    const body = JSON.stringify(chat('test-model'));
    const started = Date.now();
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: pair.port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { ...bearer, 'content-type': 'application/json', 'content-length': String(body.length) } }, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      // A slow upload: the body's second half goes three timeouts after its first (a pace, not a wait for a state).
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 900);
    });
    assert.ok(Date.now() - started >= 900);
    assert.equal(res.status, 200, res.text);
    assert.equal(pair.upstream.requests.filter((r) => r.path === '/v1/chat/completions').length, 1);
  });

  it('the first-byte timeout is not a deadline on the stream', async (t) => {
    const pair = await startPair({ firstByteTimeout: 0.2 }, { behaviour: { events: 4, intervalMs: 150 } });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: { ...chat('test-model'), stream: true } });
    assert.equal(res.status, 200);
    assert.match(res.text, /data: \[DONE\]/);
  });

  it('without aliases the body is not parsed: an unknown model is the backend\'s answer', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('other') });
    assert.equal(res.status, 404);
    assert.equal((res.json() as { error: { type: string } }).error.type, 'NotFoundError');
    assert.equal(pair.upstream.requests.length, 1);
    assert.ok(pair.lines.some((l) => l.includes('model=- 404')));
  });
});

describe('model aliases', () => {
  const aliases = { 'gpt-4o': 'test-model', fast: 'test-model' };

  it('rewrites an alias to the served name with a correct content-length', async (t) => {
    const pair = await startPair({ modelAliases: aliases });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('gpt-4o') });
    assert.equal(res.status, 200, res.text);
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.equal((JSON.parse(rec.body.toString()) as { model: string }).model, 'test-model');
    assert.equal(rec.headers['content-length'], String(rec.body.length));
    assert.ok(pair.lines.some((l) => l.includes('model=gpt-4o 200')), pair.lines.join('\n'));
  });

  it('reads a body whose media type is written in capitals (media types are case-insensitive) as JSON', async (t) => {
    const pair = await startPair({ modelAliases: aliases });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: { ...bearer, 'content-type': 'Application/JSON; charset=UTF-8' }, body: JSON.stringify(chat('gpt-4o')) });
    assert.equal(res.status, 200, res.text);
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.equal((JSON.parse(rec.body.toString()) as { model: string }).model, 'test-model');
  });

  it('a name that maps to itself (a LoRA adapter vLLM serves) goes to vLLM unchanged; an unknown one is still 404', async (t) => {
    const pair = await startPair({ modelAliases: { ...aliases, 'sql-lora': 'sql-lora' } });
    t.after(() => pair.close());
    const body = JSON.stringify({ ...chat('sql-lora'), seed: 1 });
    // The fake vLLM here serves no adapter: its own 404 answers, which shows the request reached it.
    await request(pair.port, '/v1/chat/completions', { headers: { ...bearer, 'content-type': 'application/json' }, body });
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.equal(rec.body.toString(), body);
    assert.equal((await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('nope') })).status, 404);
    const listed = (await request(pair.port, '/v1/models', { headers: bearer })).json() as { data: { id: string }[] };
    assert.ok(listed.data.some((m) => m.id === 'sql-lora'), JSON.stringify(listed));
  });

  it('rewrites a chunked body too: new content-length, no transfer-encoding', async (t) => {
    const pair = await startPair({ modelAliases: aliases });
    t.after(() => pair.close());
    const res = await sendChunked(pair.port, 0, 0, Buffer.from(JSON.stringify(chat('fast'))));
    assert.equal(res.status, 200, res.text);
    const rec = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assert.equal(rec.headers['transfer-encoding'], undefined);
    assert.equal(rec.headers['content-length'], String(rec.body.length));
  });

  it('answers 404 model_not_found itself for a model that is neither served nor an alias', async (t) => {
    const pair = await startPair({ modelAliases: aliases });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('custom') });
    assert.equal(res.status, 404);
    const body = res.json() as { error: { code: string; param: string; message: string } };
    assert.equal(body.error.code, 'model_not_found');
    assert.equal(body.error.param, 'model');
    assert.match(body.error.message, /`custom` does not exist/);
    assert.equal(pair.upstream.requests.length, 0);
    // The served name still works untouched.
    assert.equal((await request(pair.port, '/v1/chat/completions', { headers: bearer, body: chat('test-model') })).status, 200);
  });

  it('413 when a parsed body goes over the cap', async (t) => {
    const pair = await startPair({ modelAliases: aliases, maxBodyBytes: 1000 });
    t.after(() => pair.close());
    const res = await sendChunked(pair.port, 600, 50);
    assert.equal(res.status, 413);
    assert.equal(pair.upstream.requests.length, 0);
  });

  it("/v1/models lists the served name and every alias, each with vLLM's own fields (max_model_len)", async (t) => {
    const pair = await startPair({ modelAliases: aliases });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/models', { headers: bearer });
    assert.equal(res.status, 200);
    const list = res.json() as { object: string; data: { id: string; object: string; max_model_len?: number; root?: string }[] };
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m) => m.id), ['test-model', 'gpt-4o', 'fast']);
    assert.ok(list.data.every((m) => m.object === 'model'));
    // The test upstream lists test-model with max_model_len 4096: every alias of it gets that entry under its own id.
    assert.deepEqual(list.data.map((m) => [m.max_model_len, m.root]), [[4096, '/models/x'], [4096, '/models/x'], [4096, '/models/x']]);
    // vLLM's list asked once; nothing else went to it.
    assert.deepEqual(pair.upstream.requests.map((r) => r.path), ['/v1/models']);
  });

  it("/v1/models with aliases while vLLM's own list does not answer: the proxy's own entries", async (t) => {
    const pair = await startPair({ modelAliases: aliases });
    t.after(() => pair.close());
    await pair.upstream.close();
    const list = (await request(pair.port, '/v1/models', { headers: bearer })).json() as { data: { id: string; owned_by: string; root: string }[] };
    assert.deepEqual(list.data.map((m) => [m.id, m.owned_by, m.root]), [['test-model', 'llmserve', 'test-model'], ['gpt-4o', 'llmserve', 'test-model'], ['fast', 'llmserve', 'test-model']]);
  });
});
