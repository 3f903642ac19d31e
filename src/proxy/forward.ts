// The only module that imports http-proxy: every workaround for its traps (HTTP-PROXY.md) lives here.
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Logger } from '../log.js';
import { declaredLength, limitStream } from './body.js';
import { badGateway, gatewayTimeout, sendError, tooLarge } from './errors.js';
import type { Exchange } from './exchange.js';
import { prepareRequestHeaders, responseHeaders } from './headers.js';

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
  /** Forwards one request; `body` replaces the client's body (already read and rewritten) when given. */
  forward(req: IncomingMessage, res: ServerResponse, ex: Exchange, body: Buffer | null): void;
  /** Closes pooled upstream sockets. */
  close(): void;
}

class FirstByteTimeout extends Error {
  readonly code = 'LLMSERVE_FIRST_BYTE_TIMEOUT';
}

/** Builds the forwarder: one http-proxy instance and one keep-alive agent for the whole process. */
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
  const proxy = httpProxy.createProxyServer({
    target: options.backendUrl,
    agent,
    changeOrigin: true,
    xfwd: true,
    // Item 7: we write the response head ourselves, so it can be flushed before the first body byte.
    selfHandleResponse: true,
    // Item 8: no `proxyTimeout` (an idle timeout that would also cut slow streams) and no `timeout` (it
    // destroys the client socket): the first-byte deadline below is a real deadline on the headers only.
  });
  const exchanges = new WeakMap<IncomingMessage, Exchange>();

  // Item 1: http-proxy listens for `aborted`, which Node >= 15.5 no longer emits once the body is read, so
  // a client that goes away would leave vLLM generating. We destroy the upstream request ourselves.
  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const ex = exchanges.get(req);
    if (ex === undefined) return;
    ex.proxyReq = proxyReq;
    if (ex.closed || ex.answered !== null) proxyReq.destroy();
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
    const ex = exchanges.get(req);
    // Errors surface through `close` below; without a listener an `error` here could not crash anything, but
    // make that explicit rather than rely on Node's listener-count rule.
    proxyRes.on('error', () => {});
    if (ex !== undefined) clearTimeout(ex.timer ?? undefined);
    if (ex === undefined || ex.closed || ex.answered !== null || res.headersSent) {
      proxyRes.destroy();
      return;
    }
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes.headers));
    // Item 7: send the head now, not with the first body byte (which for a stream comes after the prefill). A
    // response with a length (vLLM's non-streaming answers) has its body right behind the head: flushing it
    // would cost a second socket write per request for nothing.
    if (proxyRes.headers['content-length'] === undefined) {
      res.flushHeaders();
      const type = proxyRes.headers['content-type'];
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
    (ex.meter === null ? proxyRes : ex.meter.attach(proxyRes)).pipe(res);
  });

  // Item 3: with no `error` listener http-proxy throws. Per-request errors go to the callback given to
  // `web`; this one only catches what escapes it.
  proxy.on('error', (err: Error, _req: IncomingMessage, res: ServerResponse | Socket) => {
    logger.warn('proxy error', { error: err.message });
    if ('headersSent' in res && !res.headersSent) sendError(res, badGateway);
    else res.destroy();
  });
  // Http-proxy's own handling of a client reset: it aborts the upstream request itself; nothing to add.
  proxy.on('econnreset', () => {});

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
    forward(req, res, ex, body) {
      exchanges.set(req, ex);
      prepareRequestHeaders(req.headers, body === null ? null : body.length);
      let buffer: Readable | undefined;
      if (body !== null) {
        // Item 9: the body was read and rewritten; pass it through `buffer` with its new length.
        buffer = Readable.from([body], { objectMode: false });
      } else if (declaredLength(req) === null && req.headers['transfer-encoding'] !== undefined) {
        // A chunked body has no length to check up front: count it on the way through.
        const limiter = limitStream(options.maxBodyBytes, () => answer(res, ex, 'too-large'));
        req.pipe(limiter);
        buffer = limiter;
      }
      ex.timer = setTimeout(() => answer(res, ex, 'timeout'), firstByteMs);
      res.once('close', () => {
        clearTimeout(ex.timer ?? undefined);
        // Item 1: the client left before the response finished: stop the generation now.
        if (!res.writableFinished) ex.proxyReq?.destroy();
      });
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
      try {
        proxy.web(req, res, buffer === undefined ? {} : { buffer }, onError);
      } catch (err) {
        // http.request throws synchronously on, for example, an invalid header value.
        onError(err as Error);
      }
    },
    close() {
      agent.destroy();
      proxy.close();
    },
  };
}
