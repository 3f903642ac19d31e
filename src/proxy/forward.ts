// The forwarder: each request goes to the backend over llmserve's own keep-alive HTTP/1.1 client
// (upstream/client.ts). It replaced http-proxy and then http.request (profiled: their passes, header copies,
// streams and event plumbing cost more per request and per event than all of llmserve's own checks;
// docs/performance.md); every fix for http-proxy's traps (HTTP-PROXY.md) is kept here, by number.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { declaredLength } from './body.js';
import { badGateway, gatewayTimeout, sendError, tooLarge } from './errors.js';
import { lingerAfterAnswer } from './linger.js';
import { burstWarner } from '../util/burst-warn.js';
import type { Exchange } from './exchange.js';
import { responseHeaders, upstreamHeaders, withoutKeyParams } from './headers.js';
import { DEFAULT_UPSTREAM_IDLE_MS } from './upstream/idle.js';
import { UpstreamPool, type UpstreamCall, type UpstreamHandlers, type UpstreamTarget, type WaitingOn } from './upstream/client.js';
import type { BodyFraming, ResponseHead } from './upstream/http1.js';

/** How the forwarder reaches the backend. */
export interface ForwarderOptions {
  backendUrl: string;
  /** Seconds to wait for the backend's response headers. */
  firstByteTimeout: number;
  maxBodyBytes: number;
  logger: Logger;
  now: () => number;
  /** Idle time after which a pooled upstream socket is closed, ms (upstream/idle.ts); 0: no reuse. */
  idleSocketMs?: number;
  /** Called when a response turns out to be a stream (server-sent events): the active-streams gauge. */
  onStream?: () => void;
}

/** Sends requests to the backend and streams the answers back. */
export interface Forwarder {
  /**
   * Forwards one request; `body` replaces the client's body (already read and rewritten) when given; `target`
   * (a backend URL) replaces the default backend (several models).
   */
  forward(req: IncomingMessage, res: ServerResponse, ex: Exchange, body: Buffer | null, target?: string): void;
  /** Milliseconds since a backend (the default one without `target`) last sent bytes; null when it never has. */
  msSinceHeard(target?: string): number | null;
  /** Exchanges with a backend (the default one without `target`) that wait on it alone (UpstreamPool.waitingOn). */
  waitingOn(target?: string): WaitingOn;
  /** Closes pooled upstream sockets. */
  close(): void;
}

/** Where one backend URL sends requests; the object keys the connection pool. */
interface Backend extends UpstreamTarget {
  /** The Host header the backend gets (http-proxy's changeOrigin). */
  host: string;
  /** A path prefix from the URL, '' for none. */
  basePath: string;
}

function parseBackend(url: string): Backend {
  const u = new URL(url);
  return {
    hostname: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
    port: u.port === '' ? 80 : Number(u.port),
    host: u.host,
    basePath: u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, ''),
  };
}

/** The backend's response as the usage meter reads it: a stream of the decoded body with its status and headers. */
function bodyStream(head: ResponseHead, call: UpstreamCall): Readable & { statusCode: number; headers: ResponseHead['headers'] } {
  const stream = new Readable({ read: () => call.resume() });
  return Object.assign(stream, { statusCode: head.statusCode, headers: head.headers });
}

/** Builds the forwarder: one connection pool for the whole process. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const { logger, now } = options;
  const firstByteMs = Math.max(1, Math.round(options.firstByteTimeout * 1000));
  // Item 5: without a pool every request opens a new upstream connection. The pool is unbounded (a cap queues
  // streams behind each other); idle sockets close before vLLM's keep-alive would (5 s by default: upstream/idle.ts),
  // so that a socket the backend is closing is not reused. Item 8: no idle timeout on a socket in use (it would cut
  // slow streams): the first-byte deadline below is a real deadline on the response head only. Up to 1,024 idle
  // sockets are kept (nginx's `keepalive 1024` in the bench): with 256, the end of 1,000 concurrent streams closed 744
  // upstream connections at once, and the next burst of streams opened them again.
  const pool = new UpstreamPool({ idleMs: options.idleSocketMs ?? DEFAULT_UPSTREAM_IDLE_MS, maxIdle: 1024 });
  const defaultBackend = parseBackend(options.backendUrl);
  const backends = new Map<string, Backend>();
  const backendOf = (url: string | undefined): Backend => {
    // The default backend's own URL is the same backend: one pool (and one activity record) for it.
    if (url === undefined || url === options.backendUrl) return defaultBackend;
    let b = backends.get(url);
    if (b === undefined) backends.set(url, (b = parseBackend(url)));
    return b;
  };

  // A vLLM going down fails every request in flight and every new one until the supervisor sees it: one line for
  // the burst, the access log has each request's 502.
  const backendFailed = burstWarner((msg, fields) => logger.warn(msg, fields), 'backend request failed');

  const answer = (res: ServerResponse, ex: Exchange, kind: 'too-large' | 'timeout') => {
    if (ex.answered !== null || ex.closed) return;
    ex.answered = kind;
    // A body over the cap is the proxy's own refusal (llmserve_rejected_total); a timeout is vLLM's silence.
    if (kind === 'too-large') ex.rejected = 'too_large';
    if (!res.headersSent) {
      ex.ttfb = now() - ex.start;
      sendError(res, kind === 'timeout' ? gatewayTimeout(options.firstByteTimeout) : tooLarge(options.maxBodyBytes));
    } else res.destroy();
    ex.proxyReq?.destroy();
  };

  /** The handlers of one exchange: the response head, then its body, passed to the client. */
  const handlersFor = (res: ServerResponse, ex: Exchange): UpstreamHandlers => {
    let onData: (chunk: Buffer, last: boolean) => void = noop;
    let onEnd: () => void = noop;
    return {
      onResponse(head: ResponseHead, framing: BodyFraming, call: UpstreamCall) {
        clearTimeout(ex.timer ?? undefined);
        if (ex.closed || ex.answered !== null || res.headersSent) {
          call.destroy();
          return;
        }
        const headers = responseHeaders(head.headers);
        // The request's id back to the client (vLLM, given it as X-Request-Id, names its completion chatcmpl-ID).
        headers['x-request-id'] = ex.requestId;
        // The handler's CORS header (for the proxy's own answers) must not stand in for vLLM's: where vLLM gave none,
        // its policy refused the origin (with several models, this model's list may differ from the first's).
        if (headers['access-control-allow-origin'] === undefined && res.hasHeader('access-control-allow-origin')) res.removeHeader('access-control-allow-origin');
        // The backend answered before the client's body was all here (a server that refuses a body unread, through
        // `vllm.command`): the rest is read and dropped and the connection closed after, as for the proxy's own
        // refusals. Why: the answer takes the upstream socket with it, and an upload paused for that socket to drain
        // stalled until keep_alive_timeout reset it. vLLM itself reads the whole body first: never the case there.
        if (res.req.complete === false) {
          headers.connection = 'close';
          lingerAfterAnswer(res);
        }
        // A chunked body's Content-Length (sent with Transfer-Encoding by a broken backend) is stale: ignored.
        const length = framing.kind === 'chunked' ? undefined : head.headers['content-length'];
        const socket = res.socket;
        // A response with a length (vLLM's non-streaming answers) has its body right behind the head: its head is
        // set with the first body byte (or the end), not now, so that a backend that dies in between leaves the
        // client a 502 (onError) rather than a head-less empty reply (`writeHead` alone marks the head sent).
        let headPending = length !== undefined;
        const setHead = () => {
          if (!headPending) return;
          headPending = false;
          res.writeHead(head.statusCode, head.statusMessage, headers);
        };
        // Item 7: send a stream's head now, not with the first body byte (which for a stream comes after the
        // prefill). Flushing a response with a length would cost a second socket write per request for nothing.
        if (length === undefined) {
          res.writeHead(head.statusCode, head.statusMessage, headers);
          // "Now" is the end of this tick: body bytes that came in the same read as the head (the first event, under
          // load) leave in the same write, and a stream still in its prefill gets its head a few microseconds later.
          if (socket !== null) corkForTick(socket);
          res.flushHeaders();
          const type = head.headers['content-type'];
          if (type !== undefined && type.startsWith('text/event-stream') && options.onStream !== undefined) {
            ex.streaming = true;
            options.onStream();
          }
        }
        ex.ttfb = now() - ex.start;
        // A metered request's response passes its meter (which only observes, or drops an injected usage event).
        if (ex.meter !== null) {
          const body = bodyStream(head, call);
          ex.meter.attach(body).pipe(res);
          onData = (chunk) => {
            setHead();
            if (!body.push(chunk)) call.pause();
          };
          onEnd = () => {
            setHead();
            body.push(null);
          };
          return;
        }
        let waiting = false;
        const resumeOnDrain = (emitter: NodeJS.EventEmitter) => {
          call.pause();
          if (waiting) return;
          waiting = true;
          emitter.once('drain', () => {
            waiting = false;
            call.resume();
          });
        };
        if (framing.kind === 'chunked' && res.chunkedEncoding && socket !== null) {
          // A stream (server-sent events) to a client that reads chunked too: the backend's chunks go to the
          // client's socket as they came, framing included (ChunkedReader keeps the last chunk back for
          // `res.end()`, which writes ours). No parse, copy or re-framing per event: at 50,000 events/s that was
          // most of the proxy's CPU (docs/performance.md). The head went out with flushHeaders above (or goes with
          // these bytes, when they came in the same read).
          call.relay = true;
          onData = (chunk, last) => {
            // The stream's last event ([DONE]) with the backend's last chunk behind it: cork, so that the last chunk
            // `res.end()` writes (which uncorks fully) leaves in the same write as the event, one packet instead of
            // two; the tick uncorks in case the end is not in this read after all.
            if (last) corkForTick(socket);
            if (!socket.write(chunk)) resumeOnDrain(socket);
          };
          onEnd = () => res.end();
          return;
        }
        // The fast path: what `pipe` does (backpressure included) with no stream in between. A body that comes
        // whole in one piece (a short answer) goes out with `end`, in the same write as the head.
        const whole = length === undefined ? -1 : Number(length);
        onData = (chunk) => {
          setHead();
          if (chunk.length === whole) res.end(chunk);
          else if (!res.write(chunk)) resumeOnDrain(res);
        };
        onEnd = () => {
          setHead();
          if (!res.writableEnded) res.end();
        };
      },
      onData: (chunk, last) => onData(chunk, last),
      onEnd: () => onEnd(),
      onError(err: Error) {
        clearTimeout(ex.timer ?? undefined);
        if (ex.answered !== null || ex.closed) return;
        // Item 2: a backend that dies mid-stream ends the client's response with an error (a destroyed chunked
        // response), so that the client does not hang; item 3: before the head, a 502.
        if (res.headersSent) {
          ex.answered = 'upstream-error';
          res.destroy();
          return;
        }
        const error = (err as NodeJS.ErrnoException).code ?? err.message;
        backendFailed({ path: ex.path, error }, error);
        sendError(res, badGateway);
      },
    };
  };

  return {
    forward(req, res, ex, body, target) {
      // The client left while its body was being read (the metered and alias paths read it first).
      if (ex.closed) return;
      const handlers = handlersFor(res, ex);
      let call: UpstreamCall;
      const chunked = body === null && declaredLength(req) === null && req.headers['transfer-encoding'] !== undefined;
      try {
        const backend = backendOf(target);
        const socket = req.socket as TLSSocket;
        // Item 4: the upstream headers are built here, before the request exists, whatever `Expect` said; item 6:
        // hop-by-hop headers are dropped; item 9: a rewritten body gets its new length.
        const headers = upstreamHeaders(req.headers, body === null ? null : body.length, backend.host, {
          address: socket.remoteAddress,
          encrypted: socket.encrypted === true,
        });
        call = pool.request(backend, { method: req.method ?? 'GET', target: backend.basePath + withoutKeyParams(req.url ?? '/'), headers, chunked }, handlers);
      } catch (err) {
        // An invalid header value or path (the client's parser should have refused it already).
        handlers.onError(err as Error);
        return;
      }
      ex.proxyReq = call;
      // The first-byte deadline counts from the request's last byte sent: a client's slow upload (a long audio file)
      // is `body_timeout`'s to judge, not vLLM's silence. Not armed once the head came (vLLM may answer early).
      const armFirstByte = () => {
        if (ex.closed || ex.answered !== null || ex.ttfb !== null || call.finished) return;
        ex.timer = setTimeout(() => answer(res, ex, 'timeout'), firstByteMs);
      };
      res.once('close', () => {
        clearTimeout(ex.timer ?? undefined);
        // Item 1: the client left before the response finished: stop the generation now (http-proxy relied on
        // `aborted`, which Node >= 15.5 no longer emits once the body is read).
        if (!res.writableFinished) call.destroy();
      });
      if (body !== null) {
        call.end(body);
        armFirstByte();
        return;
      }
      // A client whose request stream fails (a reset mid-body) takes the upstream request with it.
      req.on('error', () => call.destroy());
      // A chunked body has no length to check up front: it is counted on the way through, and the part over the
      // cap never reaches the backend.
      let seen = 0;
      const max = chunked ? options.maxBodyBytes : Infinity;
      // What `req.pipe(upstream)` does (backpressure included) with two listeners instead of seven.
      req.on('data', (chunk: Buffer) => {
        if (call.finished) return;
        seen += chunk.length;
        if (seen > max) {
          answer(res, ex, 'too-large');
          return;
        }
        if (!call.write(chunk)) {
          req.pause();
          call.onceDrain(() => req.resume());
        }
      });
      req.on('end', () => {
        call.end();
        armFirstByte();
      });
    },
    msSinceHeard(target) {
      return pool.msSinceHeard(backendOf(target));
    },
    waitingOn(target) {
      return pool.waitingOn(backendOf(target));
    },
    close() {
      pool.close();
    },
  };
}

function noop(): void {}

/** Holds a socket's writes until the end of this tick, so that those made meanwhile leave in one write. */
function corkForTick(socket: Socket): void {
  socket.cork();
  process.nextTick(uncork, socket);
}

function uncork(socket: Socket): void {
  // res.end() may have uncorked it already (it uncorks fully).
  if (socket.writableCorked > 0) socket.uncork();
}
