// The forwarder: one `http.request` per request on a shared keep-alive agent. It replaced http-proxy (profiled:
// its passes, url.parse, header copies and event plumbing cost more per request than all of llmserve's own
// checks; docs/performance.md); every fix for that library's traps (HTTP-PROXY.md) is kept here, by number.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { declaredLength, limitStream } from './body.js';
import { badGateway, gatewayTimeout, sendError, tooLarge } from './errors.js';
import type { Exchange } from './exchange.js';
import { responseHeaders, upstreamHeaders } from './headers.js';

/** How the forwarder reaches the backend. */
export interface ForwarderOptions {
  backendUrl: string;
  /** Seconds to wait for the backend's response headers. */
  firstByteTimeout: number;
  maxBodyBytes: number;
  logger: Logger;
  now: () => number;
  /** Idle time after which a pooled upstream socket is closed, ms; must stay below vLLM's 5 s keep-alive. */
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
  /** Closes pooled upstream sockets. */
  close(): void;
}

class FirstByteTimeout extends Error {
  readonly code = 'LLMSERVE_FIRST_BYTE_TIMEOUT';
}

/** Where one backend URL sends requests. */
interface Backend {
  hostname: string;
  port: number;
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

/** Builds the forwarder: one keep-alive agent for the whole process. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const { logger, now } = options;
  const firstByteMs = Math.max(1, Math.round(options.firstByteTimeout * 1000));
  // Item 5: without an agent every request opens a new upstream connection. The pool is unbounded (a cap
  // queues streams behind each other). Node's Agent `timeout` is set on each socket it creates; the agent only
  // acts on it for sockets in its free list (it destroys them), so it works as the idle timeout of pooled
  // sockets and never cuts an active stream; keep it below vLLM's 5 s keep-alive to avoid reusing a socket
  // the backend is closing.
  const agent = new http.Agent({
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: Infinity,
    maxFreeSockets: 256,
    timeout: options.idleSocketMs ?? 4000,
    scheduling: 'lifo',
  });
  // Item 8: no socket timeout on the upstream request (an idle timeout that would also cut slow streams) and none
  // on the client's socket: the first-byte deadline below is a real deadline on the response head only.
  const defaultBackend = parseBackend(options.backendUrl);
  const backends = new Map<string, Backend>();
  const backendOf = (url: string | undefined): Backend => {
    if (url === undefined) return defaultBackend;
    let b = backends.get(url);
    if (b === undefined) backends.set(url, (b = parseBackend(url)));
    return b;
  };

  /** The upstream response head arrived: write ours, then pass the body on. */
  const respond = (proxyRes: IncomingMessage, res: ServerResponse, ex: Exchange) => {
    clearTimeout(ex.timer ?? undefined);
    // Errors surface through `close` below; without a listener an `error` (a reset mid-body) would crash.
    proxyRes.on('error', noop);
    if (ex.closed || ex.answered !== null || res.headersSent) {
      proxyRes.destroy();
      return;
    }
    const headers = proxyRes.headers;
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(headers));
    const length = headers['content-length'];
    // Item 7: send the head now, not with the first body byte (which for a stream comes after the prefill). A
    // response with a length (vLLM's non-streaming answers) has its body right behind the head: flushing it
    // would cost a second socket write per request for nothing.
    if (length === undefined) {
      res.flushHeaders();
      const type = headers['content-type'];
      if (type !== undefined && type.startsWith('text/event-stream') && options.onStream !== undefined) {
        ex.streaming = true;
        options.onStream();
      }
    }
    ex.ttfb = now() - ex.start;
    // Item 2: an upstream that dies mid-stream gives no error event; end the client's response with an error
    // (a destroyed chunked response) so that the client does not hang.
    proxyRes.on('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
    // A metered request's response passes its meter (which only observes, or drops an injected usage event).
    if (ex.meter !== null) {
      ex.meter.attach(proxyRes).pipe(res);
      return;
    }
    const socket = res.socket;
    if (length === undefined && res.chunkedEncoding && socket !== null) {
      // A stream (server-sent events): each upstream chunk goes to the client's socket as one chunk of our chunked
      // response, framed here in one buffer and written at once. `res.write` costs four writes into a corked
      // socket and a writev on the next tick per event: at 50,000 events/s that was most of the proxy's CPU
      // (docs/performance.md). The head went out with flushHeaders above; `res.end()` writes the last chunk.
      proxyRes.on('data', (chunk: Buffer) => {
        // An empty chunk would read as the last one ("0\r\n\r\n"); Node never emits one, but never frame it.
        if (chunk.length > 0 && !socket.write(frameChunk(chunk))) {
          proxyRes.pause();
          socket.once('drain', () => proxyRes.resume());
        }
      });
      proxyRes.on('end', () => res.end());
      return;
    }
    // The fast path: what `pipe` does (backpressure included) with two listeners instead of eight. A body that
    // comes whole in one chunk (a short answer) goes out with `end`, in the same write as the head.
    const whole = length === undefined ? -1 : Number(length);
    proxyRes.on('data', (chunk: Buffer) => {
      if (chunk.length === whole) res.end(chunk);
      else if (!res.write(chunk)) {
        proxyRes.pause();
        res.once('drain', () => proxyRes.resume());
      }
    });
    proxyRes.on('end', () => {
      if (!res.writableEnded) res.end();
    });
  };

  const answer = (res: ServerResponse, ex: Exchange, kind: 'too-large' | 'timeout') => {
    if (ex.answered !== null || ex.closed) return;
    ex.answered = kind;
    if (!res.headersSent) {
      ex.ttfb = now() - ex.start;
      sendError(res, kind === 'timeout' ? gatewayTimeout(options.firstByteTimeout) : tooLarge(options.maxBodyBytes));
    } else res.destroy();
    ex.proxyReq?.destroy(kind === 'timeout' ? new FirstByteTimeout('first byte timeout') : undefined);
  };

  return {
    forward(req, res, ex, body, target) {
      // The client left while its body was being read (the metered and alias paths read it first).
      if (ex.closed) return;
      const onError = (err: Error) => {
        clearTimeout(ex.timer ?? undefined);
        if (ex.answered !== null || ex.closed) return;
        if (res.headersSent) {
          res.destroy();
          return;
        }
        logger.warn('backend request failed', { path: ex.path, error: (err as NodeJS.ErrnoException).code ?? err.message });
        sendError(res, badGateway);
      };
      let proxyReq: http.ClientRequest;
      try {
        const backend = backendOf(target);
        const socket = req.socket as TLSSocket;
        // Item 4: the upstream headers are built here, before the request exists, whatever `Expect` said; item 6:
        // hop-by-hop headers are dropped; item 9: a rewritten body gets its new length.
        const headers = upstreamHeaders(req.headers, body === null ? null : body.length, backend.host, {
          address: socket.remoteAddress,
          encrypted: socket.encrypted === true,
        });
        proxyReq = http.request({ host: backend.hostname, port: backend.port, method: req.method, path: backend.basePath + (req.url ?? '/'), headers, agent });
      } catch (err) {
        // http.request throws synchronously on, for example, an invalid header value or path.
        onError(err as Error);
        return;
      }
      ex.proxyReq = proxyReq;
      // Item 3: every upstream error is handled: 502 before the head, a cut response after it.
      proxyReq.on('error', onError);
      proxyReq.on('response', (proxyRes: IncomingMessage) => respond(proxyRes, res, ex));
      ex.timer = setTimeout(() => answer(res, ex, 'timeout'), firstByteMs);
      res.once('close', () => {
        clearTimeout(ex.timer ?? undefined);
        // Item 1: the client left before the response finished: stop the generation now (http-proxy relied on
        // `aborted`, which Node >= 15.5 no longer emits once the body is read).
        if (!res.writableFinished) proxyReq.destroy();
      });
      if (body !== null) {
        proxyReq.end(body);
        return;
      }
      // A client whose request stream fails (a reset mid-body) takes the upstream request with it.
      req.on('error', () => proxyReq.destroy());
      if (declaredLength(req) === null && req.headers['transfer-encoding'] !== undefined) {
        // A chunked body has no length to check up front: count it on the way through.
        req.pipe(limitStream(options.maxBodyBytes, () => answer(res, ex, 'too-large'))).pipe(proxyReq);
        return;
      }
      // What `req.pipe(proxyReq)` does (backpressure included) with two listeners instead of seven.
      req.on('data', (chunk: Buffer) => {
        if (!proxyReq.write(chunk)) {
          req.pause();
          proxyReq.once('drain', () => req.resume());
        }
      });
      req.on('end', () => proxyReq.end());
    },
    close() {
      agent.destroy();
    },
  };
}

function noop(): void {}

/** One chunk of a chunked body: size in hex, CRLF, the bytes, CRLF, in one buffer (from Node's pool when small). */
function frameChunk(chunk: Buffer): Buffer {
  const size = chunk.length.toString(16);
  const out = Buffer.allocUnsafe(size.length + chunk.length + 4);
  let at = out.write(size, 0, 'latin1');
  out[at++] = 13;
  out[at++] = 10;
  at += chunk.copy(out, at);
  out[at++] = 13;
  out[at] = 10;
  return out;
}
