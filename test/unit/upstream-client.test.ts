// The upstream HTTP/1.1 client (src/proxy/upstream/client.ts) against a raw TCP backend written by hand: pooling,
// framing, 1xx heads, failures, destroy, chunked request bodies, relay, and backpressure.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { UpstreamPool, type UpstreamCall, type UpstreamHandlers, type UpstreamPoolOptions, type UpstreamRequest, type UpstreamTarget } from '../../src/proxy/upstream/client.js';
import { UpstreamProtocolError, type BodyFraming, type ResponseHead } from '../../src/proxy/upstream/http1.js';
import { waitFor } from '../helpers/wait.js';

const WAIT = { timeoutMs: 2000 };

/** One request as the backend read it: the head (without the blank line) and the body bytes as they came. */
interface SeenRequest {
  head: string;
  body: Buffer;
}

/** One connection the backend accepted. */
interface BackendConn {
  socket: net.Socket;
  requests: SeenRequest[];
  /** The client closed its side (FIN). */
  ended: boolean;
  /** The socket is fully closed. */
  closed: boolean;
}

interface Backend {
  target: UpstreamTarget;
  conns: BackendConn[];
}

/** Splits the next request off `buf` at `from` (body by content-length, or raw chunked framing up to the last chunk). */
function nextRequest(buf: Buffer, from: number): { req: SeenRequest; next: number } | null {
  const at = buf.indexOf('\r\n\r\n', from, 'latin1');
  if (at < 0) return null;
  const head = buf.toString('latin1', from, at);
  const start = at + 4;
  const lower = head.toLowerCase();
  let end = start;
  if (/\r\ntransfer-encoding: *chunked/.test(lower)) {
    if (buf.toString('latin1', start, start + 5) === '0\r\n\r\n') end = start + 5;
    else {
      const last = buf.indexOf('\r\n0\r\n\r\n', start, 'latin1');
      if (last < 0) return null;
      end = last + 7;
    }
  } else {
    const cl = /\r\ncontent-length: *(\d+)/.exec(lower);
    if (cl !== null) end = start + Number(cl[1]);
    if (buf.length < end) return null;
  }
  return { req: { head, body: buf.subarray(start, end) }, next: end };
}

/** A raw backend on 127.0.0.1: `onRequest` answers each request by writing to the socket by hand. */
async function startBackend(t: TestContext, onRequest: (c: BackendConn, req: SeenRequest, index: number) => void): Promise<Backend> {
  const conns: BackendConn[] = [];
  const server = net.createServer((socket) => {
    const c: BackendConn = { socket, requests: [], ended: false, closed: false };
    conns.push(c);
    let buf = Buffer.alloc(0);
    let parsed = 0;
    socket.on('error', () => {});
    socket.on('end', () => {
      c.ended = true;
    });
    socket.on('close', () => {
      c.closed = true;
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let r = nextRequest(buf, parsed); r !== null; r = nextRequest(buf, parsed)) {
        parsed = r.next;
        c.requests.push(r.req);
        onRequest(c, r.req, c.requests.length - 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  t.after(async () => {
    for (const c of conns) c.socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { target: { hostname: '127.0.0.1', port }, conns };
}

/** What the handlers of one call heard, in order. */
class Recorder {
  heads: ResponseHead[] = [];
  framings: BodyFraming[] = [];
  chunks: Buffer[] = [];
  ends = 0;
  errors: Error[] = [];
  /** Every handler call, in order (for "nothing after X" checks). */
  events: string[] = [];
  /** Runs inside onResponse (e.g. to set relay, pause or destroy). */
  onResponse: ((head: ResponseHead, framing: BodyFraming, call: UpstreamCall) => void) | null = null;
  /** Runs inside onData. */
  onData: ((chunk: Buffer) => void) | null = null;
  /** Runs inside onEnd, after it is recorded. */
  onEnd: (() => void) | null = null;

  readonly handlers: UpstreamHandlers = {
    onResponse: (head, framing, call) => {
      this.events.push('response');
      this.heads.push(head);
      this.framings.push(framing);
      this.onResponse?.(head, framing, call);
    },
    onData: (chunk) => {
      this.events.push('data');
      // The client promises its own copy; copy anyway so a later reuse of a buffer cannot change what we saw.
      this.chunks.push(Buffer.from(chunk));
      this.onData?.(chunk);
    },
    onEnd: () => {
      this.events.push('end');
      this.ends++;
      this.onEnd?.();
    },
    onError: (err) => {
      this.events.push('error');
      this.errors.push(err);
    },
  };

  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** Waits for onEnd or onError. */
  async settled(): Promise<void> {
    await waitFor(() => this.ends + this.errors.length > 0, { ...WAIT, message: 'the call to end or fail' });
  }

  /** Waits for onEnd and checks that nothing failed. */
  async ok(): Promise<void> {
    await this.settled();
    assert.deepEqual(this.errors, [], 'no onError');
    assert.equal(this.ends, 1, 'onEnd once');
  }
}

/** A pool torn down with the test: calls still open are destroyed, then the pool is closed. */
/** A backend that answers the first request with `text` and keeps the connection for the test to write more or close. */
async function startHeldBackend(t: TestContext, text: string): Promise<{ be: Backend; conn: () => BackendConn }> {
  let held: BackendConn | null = null;
  const be = await startBackend(t, (c) => {
    held = c;
    c.socket.write(text);
  });
  return { be, conn: () => held! };
}

function makePool(t: TestContext, options: UpstreamPoolOptions = { idleMs: 5000, maxIdle: 4 }) {
  const pool = new UpstreamPool(options);
  const calls: UpstreamCall[] = [];
  t.after(() => {
    for (const c of calls) c.destroy();
    pool.close();
  });
  const request = (target: UpstreamTarget, rec: Recorder, req: Partial<UpstreamRequest> = {}): UpstreamCall => {
    const call = pool.request(target, { method: 'GET', target: '/x', headers: {}, chunked: false, ...req }, rec.handlers);
    calls.push(call);
    return call;
  };
  /** A GET (or other body-less request) sent at once; resolves when it ended without error. */
  const send = async (target: UpstreamTarget, req: Partial<UpstreamRequest> = {}): Promise<Recorder> => {
    const rec = new Recorder();
    request(target, rec, req).end();
    await rec.ok();
    return rec;
  };
  return { pool, request, send };
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

/** Resolves once `data` is handed to the kernel (on loopback: in the peer's receive queue). */
function writeAll(socket: net.Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}

/**
 * An event-loop barrier: round trips on a separate loopback connection of this process. Bytes already queued on
 * another socket of this process are read (if that socket is reading) before the second round trip completes.
 */
async function loopbackBarrier(rounds = 3): Promise<void> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    for (let i = 0; i < rounds; i++) {
      const echoed = new Promise<void>((resolve) => client.once('data', () => resolve()));
      client.write('p');
      await echoed;
    }
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('UpstreamPool keep-alive', () => {
  it('reuses one connection for two sequential GETs, sending keep-alive and the given headers', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write(ok('hello')));
    const { send } = makePool(t);
    const r1 = await send(be.target, { target: '/v1/models?a=1', headers: { host: 'backend:8000', 'x-test': 'one', 'x-multi': ['a', 'b'] } });
    assert.equal(r1.heads[0]!.statusCode, 200);
    assert.deepEqual(r1.framings, [{ kind: 'length', length: 5 }]);
    assert.equal(r1.body, 'hello');
    const r2 = await send(be.target, { target: '/second', headers: { 'x-test': 'two' } });
    assert.equal(r2.body, 'hello');

    assert.equal(be.conns.length, 1, 'one backend connection');
    const reqs = be.conns[0]!.requests;
    assert.equal(reqs.length, 2, 'two requests on it');
    assert.equal(reqs[0]!.head, 'GET /v1/models?a=1 HTTP/1.1\r\nhost: backend:8000\r\nx-test: one\r\nx-multi: a\r\nx-multi: b\r\nconnection: keep-alive');
    assert.equal(reqs[1]!.head, 'GET /second HTTP/1.1\r\nx-test: two\r\nconnection: keep-alive');
    assert.equal(be.conns[0]!.closed, false, 'the connection stays open while pooled');
  });

  it('does not hand out a connection idle for idleMs or more, even before the sweep closed it', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write(ok('hello')));
    // A sweep every second: the age check on acquire is what stops the reuse here.
    const { pool, send } = makePool(t, { idleMs: 3000, maxIdle: 4 });
    await send(be.target);
    // White box: age the pooled connection past idleMs (as 3 s of idle would), instead of waiting.
    const idle = (pool as unknown as { idle: Map<unknown, { idleSince: number }[]> }).idle;
    for (const list of idle.values()) for (const conn of list) conn.idleSince -= 3000;
    await send(be.target);
    assert.equal(be.conns.length, 2, 'a new connection, not the one vLLM may be closing');
  });

  it('does not reuse a connection whose response said Connection: close', async (t) => {
    // The backend keeps its side open: only the client may close it.
    const be = await startBackend(t, (c) => c.socket.write(ok('bye', 'Connection: close\r\n')));
    const { send } = makePool(t);
    await send(be.target);
    await send(be.target);
    assert.equal(be.conns.length, 2, 'the second request opened a new connection');
    assert.deepEqual(be.conns.map((c) => c.requests.length), [1, 1]);
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the client to close the first connection' });
  });

  it('does not reuse a connection after a 5xx response: uvicorn closes it after an exception, unannounced', async (t) => {
    // As Starlette and uvicorn answer an exception in the app: a keep-alive 500, then the connection closed at once.
    const be = await startBackend(t, (c, req) => {
      if (req.head.startsWith('GET /boom ')) {
        c.socket.write(ok('Internal Server Error').replace('200 OK', '500 Internal Server Error'));
        c.socket.end();
      } else c.socket.write(ok('fine'));
    });
    const { request } = makePool(t);
    const first = new Recorder();
    const next = new Recorder();
    // The next request starts in the 500's onEnd, before the pool can have read the backend's FIN (as a request that
    // arrives in the same loop turn would): it must not go on the closing connection.
    first.onEnd = () => request(be.target, next).end();
    request(be.target, first, { target: '/boom' }).end();
    await first.ok();
    assert.equal(first.heads[0]!.statusCode, 500);
    await next.ok();
    assert.equal(next.body, 'fine');
    assert.equal(be.conns.length, 2, 'the request after the 500 went on a new connection');
    assert.deepEqual(be.conns.map((c) => c.requests.length), [1, 1]);
  });

  it('notices a pooled connection the backend closed, and sends the next request on a new one', async (t) => {
    const be = await startBackend(t, (c) => {
      // A keep-alive answer, then the backend closes the idle connection anyway (its keep-alive timeout).
      c.socket.write(ok('one'));
      c.socket.end();
    });
    const { send } = makePool(t);
    await send(be.target);
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the client to close the connection the backend ended' });
    const r2 = await send(be.target);
    assert.equal(r2.body, 'one');
    assert.equal(be.conns.length, 2);
    assert.equal(be.conns[1]!.requests.length, 1);
  });

  it('closes a connection idle for longer than idleMs, with no new request', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write(ok('x')));
    const { send } = makePool(t, { idleMs: 150, maxIdle: 4 });
    // Timed from before the request: the connection went idle later than that, and on a loaded machine the test
    // may resume well after the pool released it, so a clock started after `send` could read less than idleMs.
    const sentAt = Date.now();
    await send(be.target);
    assert.equal(be.conns[0]!.closed, false, 'still open right after the response');
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the pool to close the idle connection' });
    const elapsed = Date.now() - sentAt;
    assert.ok(elapsed >= 150, `closed ${elapsed} ms after the request was sent, before idleMs (150)`);
  });

  it('ages idle connections and "last heard" on the monotonic clock: a wall clock stepped back an hour changes nothing', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write(ok('x')));
    const { pool, send } = makePool(t, { idleMs: 150, maxIdle: 4 });
    const wallClock = Date.now;
    t.after(() => {
      Date.now = wallClock;
    });
    await send(be.target);
    // NTP steps the clock back (or a paused VM resumes): idle ages and the time since vLLM was heard must not follow.
    Date.now = () => wallClock() - 3_600_000;
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the pool to close the connection idle past idleMs, clock step or not' });
    const since = pool.msSinceHeard(be.target);
    assert.ok(since !== null && since >= 0 && since < 60_000, `ms since heard: ${since}`);
  });

  it('reuses the connection after a HEAD response that has a content-length but no body', async (t) => {
    const be = await startBackend(t, (c, req) => c.socket.write(req.head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' : ok('after')));
    const { send } = makePool(t);
    const head = await send(be.target, { method: 'HEAD' });
    assert.deepEqual(head.framings, [{ kind: 'none' }]);
    assert.equal(head.heads[0]!.headers['content-length'], '5');
    assert.equal(head.bytes, 0, 'no body for HEAD');
    const get = await send(be.target);
    assert.equal(get.body, 'after', 'the next response is read from the start of its head');
    assert.equal(be.conns.length, 1, 'the connection was reused');
    assert.equal(be.conns[0]!.requests.length, 2);
  });
});

describe('UpstreamCall responses', () => {
  it('reads a body delimited by the connection close until the backend ends the socket', async (t) => {
    const { be, conn } = await startHeldBackend(t, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ');
    const { request } = makePool(t);
    const rec = new Recorder();
    request(be.target, rec).end();
    await waitFor(() => rec.body === 'hello ', { ...WAIT, message: 'the first part of the body' });
    assert.deepEqual(rec.framings, [{ kind: 'close' }]);
    assert.equal(rec.ends, 0, 'no end before the backend closes');
    conn().socket.end('world');
    await rec.ok();
    assert.equal(rec.body, 'hello world');
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the connection to close' });
  });

  for (const split of [false, true]) {
    it(`skips 100 Continue and 103 Early Hints heads (${split ? 'each in its own write' : 'all in one write'})`, async (t) => {
      const pieces = [
        'HTTP/1.1 100 Continue\r\n\r\n',
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n',
        'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Final: yes\r\n\r\n',
        'body',
      ];
      const be = await startBackend(t, (c) => {
        if (!split) c.socket.write(pieces.join(''));
        else void (async () => {
          for (const p of pieces) await writeAll(c.socket, p);
        })();
      });
      const { send } = makePool(t);
      const rec = await send(be.target);
      assert.equal(rec.heads.length, 1, 'onResponse once');
      assert.equal(rec.heads[0]!.statusCode, 200);
      assert.equal(rec.heads[0]!.headers['x-final'], 'yes');
      assert.equal(rec.heads[0]!.headers.link, undefined, "the 103's headers are not the response's");
      assert.equal(rec.body, 'body');
      assert.deepEqual(rec.events, ['response', 'data', 'end']);
    });
  }

  it('reports ECONNRESET, and no end, when the backend dies mid-body', async (t) => {
    const { be, conn } = await startHeldBackend(t, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
    const { request } = makePool(t);
    const rec = new Recorder();
    const call = request(be.target, rec);
    call.end();
    await waitFor(() => rec.bytes === 10, { ...WAIT, message: 'the first 10 body bytes' });
    conn().socket.destroy();
    await rec.settled();
    assert.equal(rec.errors.length, 1, 'onError once');
    assert.equal((rec.errors[0] as NodeJS.ErrnoException).code, 'ECONNRESET');
    assert.equal(rec.ends, 0, 'no onEnd');
    assert.equal(call.finished, true);
    // Still exactly one error once the client's socket has closed too (its 'close' must not report again).
    await loopbackBarrier();
    assert.deepEqual(rec.events, ['response', 'data', 'error']);
  });

  it('after call.destroy() mid-response the backend sees the connection close and no handler runs', async (t) => {
    // The first connection gets 10 of 100 body bytes; any later one a whole answer.
    const be: Backend = await startBackend(t, (c) => c.socket.write(c === be.conns[0] ? 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789' : ok('fresh')));
    const { request, send } = makePool(t);
    const rec = new Recorder();
    const call = request(be.target, rec);
    call.end();
    await waitFor(() => rec.bytes === 10, { ...WAIT, message: 'the first 10 body bytes' });
    call.destroy();
    assert.equal(call.finished, true);
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the backend to see the connection close' });
    await loopbackBarrier();
    assert.deepEqual(rec.events, ['response', 'data'], 'nothing after destroy (no end, no error from the close)');
    // The destroyed connection is not reused.
    const next = await send(be.target);
    assert.equal(next.body, 'fresh');
    assert.equal(be.conns.length, 2);
  });

  it('after call.destroy() inside onData no further onData runs, even for chunks already read', async (t) => {
    // Three chunks in one write: the client reads them in one buffer and decodes them in one loop.
    const be = await startBackend(t, (c) => c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n'));
    const { request } = makePool(t);
    const rec = new Recorder();
    const call = request(be.target, rec);
    rec.onData = () => call.destroy();
    call.end();
    await waitFor(() => rec.bytes > 0, { ...WAIT, message: 'the first chunk' });
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the backend to see the connection close' });
    assert.deepEqual(rec.events, ['response', 'data'], 'onData after destroy()');
  });

  it('passes a chunked body with its framing (relay, minus the last chunk) or decoded', async (t) => {
    const wire = '5\r\nhello\r\n6;ext=1\r\n world\r\n';
    const be = await startBackend(t, (c) => c.socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${wire}0\r\n\r\n`));
    const { request } = makePool(t);

    const relayed = new Recorder();
    relayed.onResponse = (_head, framing, call) => {
      assert.deepEqual(framing, { kind: 'chunked' });
      call.relay = true;
    };
    request(be.target, relayed).end();
    await relayed.ok();
    assert.equal(relayed.body, wire);

    const decoded = new Recorder();
    request(be.target, decoded).end();
    await decoded.ok();
    assert.equal(decoded.body, 'hello world');
    assert.equal(be.conns.length, 1, 'the connection is reused after a chunked body');
  });

  it('reports a garbage status line as an UpstreamProtocolError, and drops the connection', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write('garbage\r\nfoo: bar\r\n\r\n'));
    const { request } = makePool(t);
    const rec = new Recorder();
    request(be.target, rec).end();
    await rec.settled();
    assert.equal(rec.errors.length, 1);
    assert.ok(rec.errors[0] instanceof UpstreamProtocolError, `got ${rec.errors[0]}`);
    assert.deepEqual(rec.events, ['error']);
    await waitFor(() => be.conns[0]!.closed, { ...WAIT, message: 'the client to drop the connection' });
  });

  it('reports ECONNREFUSED when nothing listens on the port', async (t) => {
    // A port that was free a moment ago: listen, note it, close.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const { request } = makePool(t);
    const rec = new Recorder();
    const call = request({ hostname: '127.0.0.1', port }, rec);
    call.end();
    await rec.settled();
    assert.equal((rec.errors[0] as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    await loopbackBarrier();
    assert.deepEqual(rec.events, ['error'], 'one error, nothing else');
    assert.equal(call.finished, true);
  });
});

describe('UpstreamCall request bodies', () => {
  it('frames a chunked request body: write(a), write(b), end()', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write(ok('done')));
    const { request } = makePool(t);
    const rec = new Recorder();
    const call = request(be.target, rec, { method: 'POST', target: '/v1/completions', headers: { 'content-type': 'application/json' }, chunked: true });
    assert.equal(call.write(Buffer.from('{"a":')), true);
    assert.equal(call.write(Buffer.from('"hello world"}')), true);
    call.end();
    await rec.ok();
    assert.equal(rec.body, 'done');
    const req = be.conns[0]!.requests[0]!;
    assert.equal(req.head, 'POST /v1/completions HTTP/1.1\r\ncontent-type: application/json\r\nconnection: keep-alive\r\ntransfer-encoding: chunked');
    assert.equal(req.body.toString('latin1'), '5\r\n{"a":\r\ne\r\n"hello world"}\r\n0\r\n\r\n');
  });

  it('frames the bytes given to end() as a chunk before the last one, and sends a length-delimited body as is', async (t) => {
    const be = await startBackend(t, (c) => c.socket.write(ok('done')));
    const { request } = makePool(t);
    const chunked = new Recorder();
    request(be.target, chunked, { method: 'POST', chunked: true }).end(Buffer.from('0123456789abcdefg'));
    await chunked.ok();
    const plain = new Recorder();
    const call = request(be.target, plain, { method: 'POST', headers: { 'content-length': 6 } });
    call.write(Buffer.from('abc'));
    call.end(Buffer.from('def'));
    await plain.ok();
    const reqs = be.conns[0]!.requests;
    assert.equal(reqs[0]!.body.toString('latin1'), '11\r\n0123456789abcdefg\r\n0\r\n\r\n');
    assert.equal(reqs[1]!.head, 'POST /x HTTP/1.1\r\ncontent-length: 6\r\nconnection: keep-alive');
    assert.equal(reqs[1]!.body.toString('latin1'), 'abcdef');
  });
});

describe('UpstreamCall backpressure', () => {
  it('pause() stops onData, resume() lets the rest through', async (t) => {
    const { be, conn } = await startHeldBackend(t, 'HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n' + 'a'.repeat(1000));
    const { request } = makePool(t);
    const rec = new Recorder();
    const call = request(be.target, rec);
    call.end();
    await waitFor(() => rec.bytes === 1000, { ...WAIT, message: 'the first half of the body' });
    call.pause();
    // The second half is in the client socket's receive queue once the write completes (loopback); the barrier
    // gives the event loop several turns in which a reading socket would have read it.
    await writeAll(conn().socket, 'b'.repeat(1000));
    await loopbackBarrier();
    assert.equal(rec.bytes, 1000, 'no onData while paused');
    assert.equal(rec.ends, 0);
    call.resume();
    await rec.ok();
    assert.equal(rec.body, 'a'.repeat(1000) + 'b'.repeat(1000));
  });

  it('the barrier used above does see data on a socket that is not paused (control)', async (t) => {
    const { be, conn } = await startHeldBackend(t, 'HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n' + 'a'.repeat(1000));
    const { request } = makePool(t);
    const rec = new Recorder();
    request(be.target, rec).end();
    await waitFor(() => rec.bytes === 1000, { ...WAIT, message: 'the first half of the body' });
    await writeAll(conn().socket, 'b'.repeat(1000));
    await loopbackBarrier();
    assert.equal(rec.bytes, 2000);
    assert.equal(rec.ends, 1);
  });

  it('a call paused in its last onData does not leave its pooled connection paused for the next request', async (t) => {
    // The proxy pauses the call whenever the client's socket is full, which can happen on the body's last bytes:
    // the response then completes in the same read and the connection goes back to the pool.
    const be = await startBackend(t, (c, _req, i) => c.socket.write(ok(`r${i}`)));
    const { request } = makePool(t);
    const first = new Recorder();
    const call = request(be.target, first);
    first.onData = () => call.pause();
    call.end();
    await first.ok();
    assert.equal(first.body, 'r0');
    const second = new Recorder();
    request(be.target, second).end();
    await waitFor(() => be.conns.reduce((n, c) => n + c.requests.length, 0) === 2, { ...WAIT, message: 'the backend to get the second request' });
    // The answer is on its way as soon as the backend has the request: a hang fails at the deadline.
    await waitFor(() => second.ends + second.errors.length > 0, { timeoutMs: 5000, message: 'the second response (its connection was left paused)' });
    assert.deepEqual(second.errors, []);
    assert.equal(second.body, 'r1');
  });
});

describe('UpstreamPool.waitingOn (the engine-stall watchdog)', () => {
  // Sweeps every 100 ms (a short keep-alive): an exchange still counts only once it began a second or more ago.
  const SWEEPS = { idleMs: 200, maxIdle: 4 };

  it('counts the calls whose request went out whole, whose response is not finished nor paused for the client, begun a second ago', async (t) => {
    // The backend answers nothing until told: each request waits on it alone.
    const be = await startBackend(t, () => {});
    const { pool, request } = makePool(t, SWEEPS);
    const count = () => pool.waitingOn(be.target).count;
    assert.deepEqual(pool.waitingOn(be.target), { count: 0, heardMs: null }, 'nothing sent yet');

    // The second is counted from the call that began the exchange (taken before it, so the bound below is safe).
    const begunAt = performance.now();
    const held = request(be.target, new Recorder(), { method: 'POST', headers: { 'content-length': '4' } });
    held.write(Buffer.from('ab'));
    await waitFor(() => be.conns.length === 1, { ...WAIT, message: 'the first connection' });
    const uploading = pool.waitingOn(be.target);
    held.end(Buffer.from('cd'));
    assert.equal(count(), 0, 'just sent: not counted yet');
    await waitFor(() => count() === 1, { timeoutMs: 5000, message: 'the sent request to count' });
    // A lower bound only (a busy machine makes it later), with slack for the timers' whole-millisecond clock (up to a
    // millisecond early per period); the old rule counted it after 100-200 ms.
    const countedAfterMs = performance.now() - begunAt;
    assert.ok(countedAfterMs >= 950, `counted ${countedAfterMs.toFixed(0)} ms after it began, before a second had passed`);
    assert.deepEqual(uploading, { count: 0, heardMs: null }, 'a request whose body is still coming waits on its client, not the backend');
    assert.deepEqual(pool.waitingOn(be.target), { count: 1, heardMs: null }, 'waiting, nothing heard yet');

    const paused = request(be.target, new Recorder());
    paused.end();
    await waitFor(() => count() === 2, { timeoutMs: 5000, message: 'the second request to count' });
    paused.pause();
    assert.equal(count(), 1, 'a call paused for a slow client is not waiting on the backend');
    paused.resume();
    assert.equal(count(), 2);

    // Answered, failed and destroyed calls no longer count.
    await waitFor(() => be.conns.reduce((n, c) => n + c.requests.length, 0) === 2, { ...WAIT, message: 'both requests at the backend' });
    const first = be.conns.find((c) => c.requests.length === 1 && c.requests[0]!.head.startsWith('POST'))!;
    held.destroy();
    assert.equal(count(), 1);
    const other = be.conns.find((c) => c !== first)!;
    other.socket.write(ok('done'));
    await waitFor(() => count() === 0, { ...WAIT, message: 'the answered call to stop counting' });
    assert.deepEqual(pool.waitingOn({ hostname: '127.0.0.1', port: 1 }), { count: 0, heardMs: null }, 'a target never used');
  });

  it('heardMs: bytes on a waiting call count; a short exchange that ended, or one half-read that began within the last period, does not', async (t) => {
    // /silent gets nothing, /head a stream's head and nothing more, /half the head of an answer whose body never comes
    // (a short answer caught between two reads), anything else a whole answer at once.
    const be = await startBackend(t, (c, req) => {
      if (req.head.includes(' /silent ')) return;
      if (req.head.includes(' /half ')) return void c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"to');
      c.socket.write(req.head.includes(' /head ') ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' : ok('{}'));
    });
    const { pool, request, send } = makePool(t, SWEEPS);
    request(be.target, new Recorder(), { target: '/silent' }).end();
    await waitFor(() => pool.waitingOn(be.target).count === 1, { timeoutMs: 5000, message: 'the silent request to count' });
    // A quick answer (a model list) while the other waits, and one caught half-read: the waiting call heard nothing.
    await send(be.target);
    const halfSentAt = performance.now();
    const half = new Recorder();
    request(be.target, half, { target: '/half' }).end();
    await waitFor(() => half.bytes === 4, { ...WAIT, message: 'the half answer' });
    assert.deepEqual(pool.waitingOn(be.target), { count: 1, heardMs: null });
    const headed = new Recorder();
    request(be.target, headed, { target: '/head' }).end();
    await waitFor(() => headed.heads.length === 1, { ...WAIT, message: 'the head' });
    // Once they have waited a second, the stream and the half answer count, with their bytes: heard no earlier than
    // the half answer was asked for (to within a 100 ms period, and a millisecond per period of the timers' clock).
    await waitFor(() => pool.waitingOn(be.target).count === 3, { timeoutMs: 4000, message: 'the stream to count' });
    const w = pool.waitingOn(be.target);
    const sinceHalfSentMs = performance.now() - halfSentAt;
    assert.ok(w.heardMs !== null && w.heardMs <= sinceHalfSentMs + 150, `${JSON.stringify(w)}, half answer asked for ${sinceHalfSentMs.toFixed(0)} ms ago`);
  });
});
