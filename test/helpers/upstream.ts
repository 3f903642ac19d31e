// A fake vLLM for the proxy tests: records every request and answers the few routes the proxy forwards.
import { EventEmitter, once } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { waitFor as pollUntil } from './wait.js';

/** One request as the fake backend saw it. */
export interface Recorded {
  method: string;
  url: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** performance.now() when the headers arrived. */
  arrivedAt: number;
  /** performance.now() when the client (the proxy) closed before the response finished; null otherwise. */
  clientClosedAt: number | null;
  /** SSE events written before it stopped. */
  eventsSent: number;
  /** The whole body arrived. */
  bodyDone: boolean;
  /** The proxy's source port: equal ports mean a reused (pooled) connection. */
  remotePort: number;
}

/** How the fake answers; tests change it between requests. */
export interface Behaviour {
  /** Number of SSE events before `data: [DONE]`. */
  events: number;
  /** Milliseconds between SSE events. */
  intervalMs: number;
  /** Destroy the socket after this many events (the backend dying mid-stream). */
  dieAfterEvents: number | null;
  /** After this many events, vLLM's in-stream error event (`data: {"error": ...}` under the 200), then [DONE]. */
  errorAfterEvents: number | null;
  /** Wait this long before sending response headers. */
  headerDelayMs: number;
  /** Status of GET /health. */
  healthStatus: number;
  /** Wait this long before answering GET /health (a saturated vLLM answers it late while it streams). */
  healthDelayMs: number;
  /** Delay between the SSE response head (flushed at once) and the first event: the prefill. */
  firstEventDelayMs: number;
  /** Headers added to every response. */
  extraHeaders: Record<string, string>;
  /** More ids GET /v1/models lists besides the served name (vLLM lists each LoRA adapter). */
  listedModels: string[];
}

/** The running fake, with waits on observable events instead of sleeps. */
export interface Upstream {
  url: string;
  port: number;
  requests: Recorded[];
  behaviour: Behaviour;
  served: string;
  /** Resolves with the first recorded request matching `pred` (already recorded or future), or rejects after `ms`. */
  waitForRequest(pred: (r: Recorded) => boolean, ms?: number): Promise<Recorded>;
  /** Resolves when the given request's client closed, or rejects after `ms`. */
  waitForClientClose(r: Recorded, ms?: number): Promise<number>;
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1 and an ephemeral port. */
/** A bool as pydantic reads one in lax mode: true, 1, or "true", "yes", "on", "1", "t", "y" in any case. */
const laxTrue = (v: unknown): boolean => v === true || v === 1 || (typeof v === 'string' && ['1', 'on', 't', 'true', 'y', 'yes'].includes(v.toLowerCase()));

export async function startUpstream(options: { served?: string; behaviour?: Partial<Behaviour> } = {}): Promise<Upstream> {
  const served = options.served ?? 'test-model';
  const behaviour: Behaviour = { events: 3, intervalMs: 10, dieAfterEvents: null, errorAfterEvents: null, headerDelayMs: 0, healthStatus: 200, healthDelayMs: 0, firstEventDelayMs: 0, extraHeaders: {}, listedModels: [], ...options.behaviour };
  const requests: Recorded[] = [];
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  // Pending delays, cleared on close so that a long header delay cannot keep the test process alive.
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const server = http.createServer((req, res) => {
    const rec: Recorded = {
      method: req.method ?? '',
      url: req.url ?? '',
      path: (req.url ?? '').split('?')[0] ?? '',
      headers: { ...req.headers },
      body: Buffer.alloc(0),
      arrivedAt: performance.now(),
      clientClosedAt: null,
      eventsSent: 0,
      bodyDone: false,
      remotePort: req.socket.remotePort ?? 0,
    };
    requests.push(rec);
    res.on('close', () => {
      if (!res.writableFinished) {
        rec.clientClosedAt = performance.now();
        events.emit('client-close', rec);
      }
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      rec.body = Buffer.concat(chunks);
      rec.bodyDone = true;
      events.emit('request', rec);
      const go = () => answer(rec, req, res);
      if (behaviour.headerDelayMs > 0) later(go, behaviour.headerDelayMs);
      else go();
    });
    req.on('error', () => {});
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const answer = (rec: Recorded, req: IncomingMessage, res: ServerResponse) => {
    if (res.destroyed) return;
    for (const [k, v] of Object.entries(behaviour.extraHeaders)) res.setHeader(k, v);
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (rec.path === '/health' && req.method === 'GET') {
      const health = () => {
        if (res.destroyed) return;
        res.writeHead(behaviour.healthStatus, { 'content-length': 0 });
        res.end();
      };
      if (behaviour.healthDelayMs > 0) later(health, behaviour.healthDelayMs);
      else health();
      return;
    }
    if (rec.path === '/v1/models' && req.method === 'GET') {
      json(200, {
        object: 'list',
        data: [
          { id: served, object: 'model', created: 1, owned_by: 'vllm', root: '/models/x', parent: null, max_model_len: 4096, permission: [] },
          ...behaviour.listedModels.map((id) => ({ id, object: 'model', created: 1, owned_by: 'vllm', root: `/adapters/${id}`, parent: served, max_model_len: 4096, permission: [] })),
        ],
      });
      return;
    }
    // As vLLM answers them: no `usage` (no inference runs).
    if (rec.path === '/tokenize' && req.method === 'POST') {
      json(200, { count: 3, max_model_len: 4096, tokens: [1, 2, 3], token_strs: null });
      return;
    }
    if (rec.path === '/detokenize' && req.method === 'POST') {
      json(200, { prompt: 'a b c' });
      return;
    }
    if (rec.path === '/metrics' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('vllm:num_requests_running 0\n');
      return;
    }
    if (rec.path === '/v1/chat/completions' && req.method === 'POST') {
      let body: { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } } = {};
      try {
        body = JSON.parse(rec.body.toString('utf8')) as typeof body;
      } catch {
        json(400, { error: { message: 'bad json', type: 'BadRequestError', param: null, code: 400 } });
        return;
      }
      // The served model and the LoRA adapters it lists, as vLLM serves them.
      if (body.model !== served && !behaviour.listedModels.includes(String(body.model))) {
        json(404, { error: { message: `The model \`${String(body.model)}\` does not exist.`, type: 'NotFoundError', param: 'model', code: 404 } });
        return;
      }
      // Bools as vLLM's pydantic models read them (lax mode): `"stream": "true"` streams there too.
      // Given stream_options, vLLM's include_usage defaults to true.
      const options = body.stream_options;
      if (laxTrue(body.stream)) return stream(rec, res, options !== null && typeof options === 'object' && (options.include_usage === undefined || laxTrue(options.include_usage)));
      json(200, {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: served,
        choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
      return;
    }
    json(404, { detail: 'Not Found' });
  };

  const stream = (rec: Recorded, res: ServerResponse, includeUsage = false) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const tick = () => {
      if (res.destroyed) return;
      if (behaviour.dieAfterEvents !== null && rec.eventsSent >= behaviour.dieAfterEvents) {
        res.socket?.destroy();
        return;
      }
      if (behaviour.errorAfterEvents !== null && rec.eventsSent >= behaviour.errorAfterEvents) {
        // As vLLM's serving layer answers an exception once the stream has begun: an error event, then [DONE].
        const error = { error: { message: 'EngineCore encountered an issue', type: 'InternalServerError', param: null, code: 500 } };
        res.end(`data: ${JSON.stringify(error)}\n\ndata: [DONE]\n\n`);
        return;
      }
      if (rec.eventsSent >= behaviour.events) {
        // Like vLLM: with stream_options.include_usage, one last chunk with empty choices and the usage.
        if (includeUsage) {
          const usage = { prompt_tokens: 1, completion_tokens: rec.eventsSent, total_tokens: 1 + rec.eventsSent };
          res.write(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: served, choices: [], usage })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
        return;
      }
      const chunk = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: served, choices: [{ index: 0, delta: { content: `t${rec.eventsSent}` }, finish_reason: null }] };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      rec.eventsSent++;
      later(tick, behaviour.intervalMs);
    };
    if (behaviour.firstEventDelayMs > 0) later(tick, behaviour.firstEventDelayMs);
    else tick();
  };

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    behaviour,
    served,
    waitForRequest(pred, ms = 5000) {
      const found = requests.find((r) => r.bodyDone && pred(r));
      if (found !== undefined) return Promise.resolve(found);
      return waitFor(events, 'request', pred, ms, 'a matching upstream request');
    },
    waitForClientClose(rec, ms = 5000) {
      if (rec.clientClosedAt !== null) return Promise.resolve(rec.clientClosedAt);
      return waitFor(events, 'client-close', (r: Recorded) => r === rec, ms, 'the upstream client to close').then((r) => r.clientClosedAt ?? 0);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits for an event whose argument matches, with a deadline. */
function waitFor(events: EventEmitter, name: string, pred: (r: Recorded) => boolean, ms: number, what: string): Promise<Recorded> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      events.off(name, on);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const on = (r: Recorded) => {
      if (!pred(r)) return;
      clearTimeout(timer);
      events.off(name, on);
      resolve(r);
    };
    events.on(name, on);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Proxy-side helpers shared by the proxy tests: a proxy in front of the fake, a plain HTTP client, log capture.

import { createHash } from 'node:crypto';
import { createLogger, type Logger } from '../../src/log.js';
import { createProxy, type ProxyDeps, type ProxyHandle } from '../../src/proxy/server.js';
import { proxySettings, type ProxySettings } from '../../src/proxy/settings.js';

/** The test key and its name; long and unusual so that a leak is easy to grep. */
export const KEY = 'sk-llmserve-test-KEY-9f8e7d6c5b4a';
export const KEY_NAME = 'alice';

/** Hex SHA-256 of a raw key. */
export function sha256Hex(raw: string): string {
  return createHash('sha256').update(raw).digest('hex');
}

/** A logger that keeps every line in memory. */
export function memoryLogger(format: 'text' | 'json' = 'text'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = { write: (chunk: string) => lines.push(...chunk.split('\n').filter((l) => l.length > 0)), isTTY: false };
  return { logger: createLogger({ source: 'proxy', format, color: false, stdout: sink, stderr: sink }), lines };
}

/** A proxy in front of a fake upstream. */
export interface Pair {
  upstream: Upstream;
  proxy: ProxyHandle;
  url: string;
  port: number;
  lines: string[];
  close(): Promise<void>;
}

/** Starts a fake upstream and a proxy in front of it (auth on, one key named alice, state ready). */
export async function startPair(
  over: Partial<ProxySettings> = {},
  opts: { behaviour?: Partial<Behaviour>; format?: 'text' | 'json'; deps?: ProxyDeps } = {},
): Promise<Pair> {
  const upstream = await startUpstream({ served: 'test-model', ...(opts.behaviour ? { behaviour: opts.behaviour } : {}) });
  const { logger, lines } = memoryLogger(opts.format ?? 'text');
  const settings = proxySettings({
    backendUrl: upstream.url,
    servedModelName: 'test-model',
    keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY) }],
    logFormat: opts.format ?? 'text',
    ...over,
  });
  let proxy: ProxyHandle;
  try {
    proxy = await createProxy(settings, { logger, ...opts.deps });
  } catch (err) {
    await upstream.close();
    throw err;
  }
  return {
    upstream,
    proxy,
    url: `http://127.0.0.1:${proxy.port}`,
    port: proxy.port,
    lines,
    async close() {
      await proxy.close();
      await upstream.close();
    },
  };
}

/** A response read whole. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

/**
 * One request with a fresh connection (no pooling surprises; Node's client then asks for `Connection: close`), or on
 * `agent`'s kept connections; `body` as given, JSON-encoded when an object.
 */
export function request(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown; chunked?: boolean; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : typeof options.body === 'string' || Buffer.isBuffer(options.body) ? options.body : JSON.stringify(options.body);
    const headers: Record<string, string> = { ...(body !== undefined && typeof options.body === 'object' && !Buffer.isBuffer(options.body) ? { 'content-type': 'application/json' } : {}), ...options.headers };
    if (body !== undefined && options.chunked !== true) headers['content-length'] = String(Buffer.byteLength(body));
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/**
 * Sends raw bytes on a fresh connection (`keepOpen`: without ending its side) and resolves with everything the proxy
 * sent before it closed.
 */
export function raw(port: number, data: string, opts: { keepOpen?: boolean } = {}): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1', () => (opts.keepOpen ? socket.write(data) : socket.end(data)));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
  });
}

/** Bearer header for the test key. */
export const bearer = { authorization: `Bearer ${KEY}` };

/** Waits until `cond()` holds, polling every 5 ms (no fixed sleep), or throws after `ms`: wait.ts's waitFor, short. */
export async function until(cond: () => boolean, ms = 5000, what = 'a condition'): Promise<void> {
  await pollUntil(cond, { timeoutMs: ms, intervalMs: 5, message: `waiting for ${what}` });
}
