// The proxy's HTTP/1.1 client to the backend: a keep-alive pool of plain sockets, the request head written in one
// go, the response parsed here. It replaced http.request + http.Agent on the hot path (profiled: ClientRequest,
// IncomingMessage and their streams were most of the proxy's CPU per request and per streamed event,
// docs/performance.md); a chunked event stream can be relayed with its framing as it came (`relay`).
import net, { type Socket } from 'node:net';
import type { OutgoingHttpHeaders } from 'node:http';
import { bodyFraming, ChunkedReader, keepsAlive, parseResponseHead, requestHead, UpstreamProtocolError, type BodyFraming, type ResponseHead } from './http1.js';

/** Where requests go: an object the caller keeps (it keys the pool). */
export interface UpstreamTarget {
  readonly hostname: string;
  readonly port: number;
}

/** One request to send. */
export interface UpstreamRequest {
  method: string;
  /** Path and query. */
  target: string;
  headers: OutgoingHttpHeaders;
  /** Frame the body as chunked (the client's body came without a length). */
  chunked: boolean;
}

/** What the caller hears about one exchange; nothing is called after `destroy()`, or after onEnd/onError. */
export interface UpstreamHandlers {
  /** The response head (1xx heads are skipped). May set `call.relay` for a chunked body, or destroy the call. */
  onResponse(head: ResponseHead, framing: BodyFraming, call: UpstreamCall): void;
  /**
   * Body bytes: decoded, or, with `relay` on a chunked body, with their chunk framing as it came; `last` (relay
   * only) when the last chunk's size line came right after them in the same read: no more data follows.
   */
  onData(chunk: Buffer, last: boolean): void;
  /** The whole body arrived. */
  onEnd(): void;
  /** The connection failed, or the backend broke HTTP/1.1, before or during the response. */
  onError(err: Error): void;
}

/** A response head larger than this is refused (Node's default limit is 16 KiB). */
const MAX_HEAD = 64 * 1024;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/** Whether `buf` holds an LF not preceded by a CR (a head still incomplete is scanned again as it grows: heads are short). */
function hasBareLf(buf: Buffer): boolean {
  for (let lf = buf.indexOf(10); lf >= 0; lf = buf.indexOf(10, lf + 1)) if (lf === 0 || buf[lf - 1] !== 13) return true;
  return false;
}
/** Every upstream socket reads into this one buffer (reads are handled synchronously, then copied). */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/** Options of the pool. */
export interface UpstreamPoolOptions {
  /** Idle time after which a pooled socket is closed, ms: below the backend's keep-alive (idle.ts); 0 = no reuse. */
  idleMs: number;
  /** Idle sockets kept per target. */
  maxIdle: number;
}

/** Exchanges that wait on a backend alone, and ms since any of them last got bytes (null: none has). */
export interface WaitingOn {
  count: number;
  heardMs: number | null;
}

/** One pooled connection and the exchange it carries, if any. */
interface Conn {
  readonly socket: Socket;
  readonly target: UpstreamTarget;
  readonly heard: Heard;
  call: UpstreamCall | null;
  idleSince: number;
}

/**
 * When a target last sent bytes: a flag set per read (a store, no clock read per event), timed by the sweep; and the
 * exchanges with it under way (the engine-stall watchdog asks how many wait on it).
 */
interface Heard {
  recently: boolean;
  /** performance.now() at the sweep that last found the flag set; 0: never. */
  at: number;
  readonly calls: Set<UpstreamCall>;
}

/** Keep-alive connections to the backends, and the requests sent over them. */
export class UpstreamPool {
  private readonly idle = new Map<UpstreamTarget, Conn[]>();
  private readonly heard = new Map<UpstreamTarget, Heard>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly sweepMs: number;
  /** Sweeps an exchange must have seen begin before waitingOn counts it: a second or more, whatever the period. */
  private readonly settleSweeps: number;
  /** Sweeps so far: an exchange notes the count at each read (a store, no clock read per event). */
  private sweeps = 0;
  private closed = false;

  constructor(private readonly options: UpstreamPoolOptions) {
    // One timer for the whole pool instead of one per idle socket.
    this.sweepMs = Math.max(100, Math.min(1000, options.idleMs / 2));
    // Born between sweeps k and k+1, an exchange is counted from sweep k+settleSweeps: (settleSweeps-1) periods later.
    this.settleSweeps = Math.ceil(1000 / this.sweepMs) + 1;
    this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
    this.sweeper.unref();
  }

  /** Starts a request on a pooled or new connection; the head goes out with the first body bytes or `end`. */
  request(target: UpstreamTarget, request: UpstreamRequest, handlers: UpstreamHandlers): UpstreamCall {
    // Builds (and validates) the head before taking a connection: a bad header throws with nothing to clean up.
    const head = requestHead(request.method, request.target, request.headers, request.chunked);
    const conn = this.acquire(target);
    const call = new UpstreamCall(this, conn, request.method, head, request.chunked, handlers);
    conn.call = call;
    call.bornSweep = this.sweeps;
    conn.heard.calls.add(call);
    return call;
  }

  /**
   * Milliseconds since `target` last sent response bytes (to within the sweep's period, at most a second), or null
   * when it never has: the supervisor's evidence that a vLLM whose /health is slow is busy, not hung.
   */
  msSinceHeard(target: UpstreamTarget): number | null {
    const heard = this.heard.get(target);
    if (heard === undefined) return null;
    if (heard.recently) return 0;
    return heard.at === 0 ? null : performance.now() - heard.at;
  }

  /**
   * The exchanges with `target` that wait on it alone (the whole request sent, the response not finished, not paused
   * because the client reads slowly) and began a second or more ago, and ms since any of them last got bytes
   * (null: none has; good to the period, at most a second). Counted when asked (every health interval), not kept per
   * event. Why these only: silence on any other (a client still uploading, or not reading) is not the backend's doing,
   * and bytes on a short exchange (a model list, `/tokenize`: vLLM's API server answers them without its engine, in
   * milliseconds, though the answer may come in two reads) say nothing about its engine.
   */
  waitingOn(target: UpstreamTarget): WaitingOn {
    let count = 0;
    let newest = -1;
    for (const call of this.heard.get(target)?.calls ?? []) {
      if (!call.waitsOnBackend || call.bornSweep > this.sweeps - this.settleSweeps) continue;
      count++;
      if (call.heardSweep > newest) newest = call.heardSweep;
    }
    return { count, heardMs: newest < 0 ? null : (this.sweeps - newest) * this.sweepMs };
  }

  /** Closes idle connections; connections in use close when their exchange ends. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const list of this.idle.values()) for (const c of list) c.socket.destroy();
    this.idle.clear();
  }

  /** Called by a finished exchange: keeps the connection for the next request, or closes it. */
  release(conn: Conn, reusable: boolean): void {
    if (conn.call !== null) conn.heard.calls.delete(conn.call);
    conn.call = null;
    // idleMs 0: vLLM's keep-alive is 0 (VLLM_HTTP_TIMEOUT_KEEP_ALIVE), it closes each connection after its response.
    if (!reusable || this.closed || conn.socket.destroyed || this.options.idleMs <= 0) {
      conn.socket.destroy();
      return;
    }
    let list = this.idle.get(conn.target);
    if (list === undefined) this.idle.set(conn.target, (list = []));
    if (list.length >= this.options.maxIdle) {
      conn.socket.destroy();
      return;
    }
    // A call paused in its last onData left the socket paused: the next call must read it.
    if (conn.socket.isPaused()) conn.socket.resume();
    // The monotonic clock, as for every age here: a wall clock stepped back (NTP, a resumed VM) would keep a socket
    // that vLLM is closing, or a hung vLLM 'heard from', for as long as the step.
    conn.idleSince = performance.now();
    // An idle socket must not keep the process alive (as http.Agent's free sockets don't).
    conn.socket.unref();
    list.push(conn);
  }

  private acquire(target: UpstreamTarget): Conn {
    const list = this.idle.get(target);
    if (list !== undefined) {
      // Last in, first out: the warmest socket, and the cold ones age out.
      const now = performance.now();
      for (let conn = list.pop(); conn !== undefined; conn = list.pop()) {
        // Idle past idleMs: the sweep (once a second) has not closed it yet, but the backend may be closing it now.
        if (!conn.socket.destroyed && conn.socket.readyState === 'open' && now - conn.idleSince < this.options.idleMs) {
          conn.socket.ref();
          return conn;
        }
        // Half-closed by the backend, its 'end' not handled yet: never reuse it.
        conn.socket.destroy();
      }
    }
    // `onread` (documented in net.connect) hands each read to a callback, without the Readable stream's push and
    // 'data' machinery nor a fresh 64 KiB allocation per read: per streamed event that was a measurable part of
    // the proxy's CPU. The read buffer is shared and reused, so each read is copied out before anyone keeps it.
    let heard = this.heard.get(target);
    if (heard === undefined) this.heard.set(target, (heard = { recently: false, at: 0, calls: new Set() }));
    const conn: Conn = { socket: null as unknown as Socket, target, heard, call: null, idleSince: 0 };
    const socket = net.connect({
      host: target.hostname,
      port: target.port,
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array) => {
          const d = Buffer.from((buf as Buffer).subarray(0, n));
          conn.heard.recently = true;
          if (conn.call !== null) {
            conn.call.heardSweep = this.sweeps;
            conn.call.received(d);
          }
          // Bytes on an idle connection: the backend is out of step with us; never reuse it.
          else this.drop(conn);
          return true;
        },
      },
    });
    (conn as { socket: Socket }).socket = socket;
    // Flowing mode, though no 'data' is ever emitted: without it 'end' (the backend closed) would never fire.
    socket.resume();
    // Events are small and must leave at once; TCP keep-alive as http.Agent sets it.
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    socket.on('end', () => {
      if (conn.call !== null) conn.call.ended();
      else this.drop(conn);
    });
    socket.on('error', (err: Error) => {
      if (conn.call !== null) conn.call.failed(err);
      else this.drop(conn);
    });
    socket.on('close', () => {
      if (conn.call !== null) conn.call.failed(hangUp());
      else this.drop(conn);
    });
    return conn;
  }

  private drop(conn: Conn): void {
    conn.socket.destroy();
    const list = this.idle.get(conn.target);
    const at = list === undefined ? -1 : list.indexOf(conn);
    if (at >= 0) list!.splice(at, 1);
  }

  private sweep(): void {
    this.sweeps++;
    const now = performance.now();
    for (const heard of this.heard.values()) {
      if (!heard.recently) continue;
      heard.recently = false;
      heard.at = now;
    }
    const oldest = now - this.options.idleMs;
    for (const list of this.idle.values()) {
      // The list is in release order: the idle-too-long ones are at its start.
      let n = 0;
      while (n < list.length && list[n]!.idleSince <= oldest) list[n++]!.socket.destroy();
      if (n > 0) list.splice(0, n);
    }
  }
}

/** `socket hang up` (ECONNRESET), as Node's client reports a connection closed before the response ended. */
function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

const enum State {
  Head,
  Body,
  Done,
}

/** One request/response exchange on one connection. */
export class UpstreamCall {
  /** Set in onResponse: pass a chunked body on with its framing (see ChunkedReader). */
  relay = false;
  /** The pool's sweep count at this exchange's last read; -1: nothing read yet (UpstreamPool.waitingOn). */
  heardSweep = -1;
  /** The pool's sweep count when this exchange began. */
  bornSweep = -1;
  private state = State.Head;
  private headSent = false;
  private requestDone = false;
  private pending: Buffer | null = null;
  private head: ResponseHead | null = null;
  private framing: BodyFraming = { kind: 'none' };
  private left = 0;
  private reader: ChunkedReader | null = null;
  /** The backend sent bytes past the body: the connection is not reused. */
  private trailing = false;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly conn: Conn,
    private readonly method: string,
    private readonly requestHeadText: string,
    private readonly chunked: boolean,
    private readonly handlers: UpstreamHandlers,
  ) {}

  /** Whether the response ended (whole body, or the call was destroyed or failed). */
  get finished(): boolean {
    return this.state === State.Done;
  }

  /** The request is sent whole and the response is not finished, nor paused for a slow client: only the backend can act. */
  get waitsOnBackend(): boolean {
    return this.state !== State.Done && this.requestDone && !this.conn.socket.isPaused();
  }

  /** Request body bytes; false when the socket's buffer is full (wait for `onceDrain`). Ignored once finished. */
  write(chunk: Buffer): boolean {
    if (this.state === State.Done || this.requestDone) return true;
    if (chunk.length === 0) return true;
    const socket = this.conn.socket;
    socket.cork();
    this.sendHead();
    if (this.chunked) {
      socket.write(chunk.length.toString(16) + CRLF, 'latin1');
      socket.write(chunk);
      socket.write(CRLF, 'latin1');
    } else socket.write(chunk);
    socket.uncork();
    return !socket.writableNeedDrain;
  }

  /** The request's last bytes (or none): sends the head if not yet sent, and the last chunk when chunked. */
  end(chunk?: Buffer): void {
    if (this.state === State.Done || this.requestDone) return;
    const socket = this.conn.socket;
    socket.cork();
    if (chunk !== undefined) this.write(chunk);
    this.sendHead();
    if (this.chunked) socket.write(LAST_CHUNK, 'latin1');
    this.requestDone = true;
    socket.uncork();
  }

  /** Calls `fn` once the socket can take more request body. */
  onceDrain(fn: () => void): void {
    this.conn.socket.once('drain', fn);
  }

  /** Stops reading the response (the client is slow). No-op once finished: the socket may carry another call. */
  pause(): void {
    if (this.state !== State.Done) this.conn.socket.pause();
  }

  /** Reads the response again. No-op once finished (a late 'drain' must not touch the next call's socket). */
  resume(): void {
    if (this.state !== State.Done) this.conn.socket.resume();
  }

  /** Abandons the exchange and closes its connection (the backend sees the client leave); no handler runs after. */
  destroy(): void {
    if (this.state === State.Done) return;
    this.state = State.Done;
    this.pool.release(this.conn, false);
  }

  /** Bytes from the backend. */
  received(d: Buffer): void {
    try {
      if (this.state === State.Head) this.readHead(d);
      else if (this.state === State.Body) this.readBody(d);
      else this.trailing = true;
    } catch (err) {
      this.failed(err as Error);
    }
  }

  /** The backend closed its side: the end of a body delimited by the connection's close, or a failure. */
  ended(): void {
    if (this.state === State.Body && this.framing.kind === 'close') this.complete(false);
    else this.failed(hangUp());
  }

  /** The connection failed, or the backend broke the protocol. */
  failed(err: Error): void {
    if (this.state === State.Done) return;
    this.state = State.Done;
    this.pool.release(this.conn, false);
    this.handlers.onError(err);
  }

  private sendHead(): void {
    if (this.headSent) return;
    this.headSent = true;
    this.conn.socket.write(this.requestHeadText, 'latin1');
  }

  private readHead(d: Buffer): void {
    let buf = this.pending === null ? d : Buffer.concat([this.pending, d]);
    for (;;) {
      const at = buf.indexOf('\r\n\r\n', 0, 'latin1');
      if (at < 0) {
        if (buf.length > MAX_HEAD) throw new UpstreamProtocolError(`response head from the backend over ${MAX_HEAD} bytes`);
        // A head whose lines end in a bare LF never shows a CRLF CRLF: refused now, not after first_byte_timeout.
        if (hasBareLf(buf)) throw new UpstreamProtocolError('a response head line from the backend ends without CR');
        this.pending = buf;
        return;
      }
      this.pending = null;
      const head = parseResponseHead(buf.toString('latin1', 0, at));
      buf = buf.subarray(at + 4);
      if (head.statusCode >= 100 && head.statusCode < 200) {
        // 100 Continue and 103 Early Hints come before the response; never 101: no Upgrade goes upstream.
        if (head.statusCode === 101) throw new UpstreamProtocolError('the backend switched protocols (101), which llmserve never asks for');
        if (buf.length === 0) return;
        continue;
      }
      this.head = head;
      this.framing = bodyFraming(this.method, head);
      this.state = State.Body;
      this.handlers.onResponse(head, this.framing, this);
      if (this.state !== State.Body) return;
      if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.framing.length === 0)) {
        if (buf.length > 0) this.trailing = true;
        this.complete(true);
        return;
      }
      if (this.framing.kind === 'length') this.left = this.framing.length;
      else if (this.framing.kind === 'chunked') this.reader = new ChunkedReader(this.relay, (chunk, last) => {
        // The reader goes on through the rest of its buffer; a call destroyed by onData hears nothing more.
        if (this.state === State.Body) this.handlers.onData(chunk, last);
      });
      if (buf.length > 0) this.readBody(buf);
      return;
    }
  }

  private readBody(d: Buffer): void {
    const framing = this.framing.kind;
    if (framing === 'length') {
      if (d.length <= this.left) {
        this.left -= d.length;
        this.handlers.onData(d, false);
      } else {
        this.trailing = true;
        this.handlers.onData(d.subarray(0, this.left), false);
        this.left = 0;
      }
      if (this.left === 0 && this.state === State.Body) this.complete(true);
    } else if (framing === 'chunked') {
      const reader = this.reader!;
      if (reader.push(d) && this.state === State.Body) {
        if (reader.rest < d.length) this.trailing = true;
        this.complete(true);
      }
    } else this.handlers.onData(d, false);
  }

  private complete(reusable: boolean): void {
    this.state = State.Done;
    // A connection is reused only if both sides are done with it and the backend keeps it open, and never after a
    // server error. Why: after an exception in vLLM's app, Starlette sends the 500 and re-raises, and uvicorn then
    // closes the connection without a `Connection: close`; a request sent on it before its FIN is read would fail
    // (against real uvicorn, 1 in 4 requests sent right behind such a 500 got a 502).
    const head = this.head;
    this.pool.release(this.conn, reusable && !this.trailing && this.requestDone && head !== null && head.statusCode < 500 && keepsAlive(head));
    this.handlers.onEnd();
  }
}
