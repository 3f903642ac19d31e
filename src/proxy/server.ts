// The proxy as an in-process object: listen, track requests in flight, change state, reload keys, drain, close.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { LlmserveError } from '../errors.js';
import { hasCountedLimits, withoutCountedLimits } from '../config/index.js';
import { createLogger, quietWhile, type Logger } from '../log.js';
import { createAccessLog } from './access-log.js';
import type { BackendActivity } from './backend-activity.js';
import { declaredLength } from './body.js';
import { finalStatus, newExchange, type Exchange } from './exchange.js';
import { createForwarder } from './forward.js';
import { createHandler } from './handler.js';
import { createBackendHealth, type HeardFrom } from './health.js';
import { createCostControl } from './cost.js';
import { PROMETHEUS_CONTENT_TYPE, type RegistrySnapshot } from '../metrics/registry.js';
import { createKeyRing, type KeysFileLoader } from './keyring.js';
import { isBackendState, type BackendState, type KeyEntryDigest, type ProxySettings, type TlsInForce } from './settings.js';
import { createRouter, metricsBackends } from './router.js';
import { originForm } from './routes.js';
import { loadTls, loadTlsOr, watchCertificateDates, type TlsMaterial } from './tls.js';
import { clientErrorResponse, connectRefused, http2Refusal } from './errors.js';
import { burstWarner } from '../util/burst-warn.js';

/** A running proxy. */
export interface ProxyHandle {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** The backend state; with several models, `model` names the one that changed. */
  setState(state: BackendState, model?: string): void;
  /** Every backend's restarts so far, as the supervisor counts them (never lowers the metric). */
  setRestarts(total: number): void;
  /** Re-reads the keys file (keeping the configured keys); resolves with the key count, rejects and keeps the old keys on error. */
  reloadKeys(): Promise<number>;
  /** Re-reads proxy.tls's files and serves them from the next handshake on; on failure logs why and keeps the old. */
  reloadTls(): Promise<void>;
  /** From now on /health/readiness answers 503 (a stop is coming), while requests are still served. */
  markStopping(): void;
  /** Refuses new requests (503) and waits for those in flight, up to `timeoutMs`; resolves with how many remain. */
  drain(timeoutMs: number): Promise<number>;
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
  /** Requests currently being handled. */
  inflight(): number;
  /** This process's metrics as plain data (for another worker's /metrics). */
  metricsSnapshot(): RegistrySnapshot;
  /** The names of the gauges and max-merged series among them (Registry.unsummedNames). */
  metricsUnsummed(): string[];
  /** A quiet cluster worker (`deps.quiet`) says from now on what every worker would say alike. */
  speak(): void;
  /** For each backend URL: ms since it last sent response bytes to this process (null: never), and the exchanges waiting on it. */
  backendActivity(): BackendActivity;
}

/** Side effects the proxy can be given (tests); real defaults otherwise. */
export interface ProxyDeps {
  logger?: Logger;
  /** A second or later proxy worker: the lines every worker would repeat (listening, usage store, backend state) are left to the first. */
  quiet?: boolean;
  /** Monotonic clock in ms. */
  now?: () => number;
  /** Reads the keys file (default: the config module's loader). */
  loadKeysFile?: KeysFileLoader;
  /** Told the keys file's keys each time a load of it is put in force (the supervisor keeps them for a restart). */
  onKeysLoaded?: (fromFile: readonly KeyEntryDigest[]) => void;
  /** Told the TLS certificate and key now served (PEM), at start when loaded from the files and after each reload. */
  onTlsLoaded?: (material: TlsInForce) => void;
  /** A proxy worker (`proxy.workers` > 1): every worker's metrics, for /metrics (worker-metrics.ts). */
  gatherMetrics?: () => Promise<RegistrySnapshot[]>;
  /** A proxy worker: how recently a backend sent bytes to any worker, for readiness (worker-activity.ts). */
  heardFrom?: HeardFrom;
  /**
   * A proxy worker: told its requests in flight as a drain begins, instead of logging them; the cluster primary says
   * the sum once (each worker's own count, one line per worker, read as the whole).
   */
  onDraining?: (inflight: number, timeoutMs: number) => void;
  /** A proxy worker: its keys file errors go here, not to the log; the primary says each distinct one once. */
  onKeysError?: (message: string) => void;
  /** A proxy worker: its warnings on opening the usage store (every worker opens it) go here, said once likewise. */
  onStoreWarning?: (message: string) => void;
}

/** Starts the proxy; rejects with PORT_IN_USE or TLS errors that name the port or the file. */
export async function createProxy(settings: ProxySettings, deps: ProxyDeps = {}): Promise<ProxyHandle> {
  const logger = deps.logger ?? createLogger({ source: 'proxy', format: settings.logFormat, color: settings.color });
  const now = deps.now ?? (() => performance.now());
  // Cleared by `speak()`: the cluster primary hands the speaking to this worker when the one that spoke is gone.
  let quiet = deps.quiet === true;
  const announce = quietWhile(logger, () => quiet);
  // Warnings that every worker would give alike (the keys file's, the certificate's): the speaking one gives them.
  const announceWarnings = quietWhile(logger, () => quiet, { warn: true });
  // A start message without a valid state means nothing is known yet about the backend.
  let state: BackendState = isBackendState(settings.state) ? settings.state : 'starting';
  // Set by the supervisor's `stopping` (SIGTERM, before drain.delay): only readiness changes, so that HTTP probes agree
  // with the probe files while the load balancer still sends requests.
  let stopping = false;
  // The router's readiness checks ask the forwarder (made below, after the key ring and the usage meter) how recently
  // each backend sent bytes, or in a cluster worker every worker through the primary: through this indirection.
  let heardFrom: HeardFrom = () => null;
  const router = createRouter(settings, now, (url) => heardFrom(url));
  if (router !== null) state = router.overall();
  const workers = settings.workers ?? 1;
  // With several proxy processes, each would count a key's limits on its own (config/resolve.ts refuses that at
  // start; `proxy.workers: auto` picks 1 there): a reloaded keys file that adds limits is loaded without them. Only
  // them: `disabled`, `expires` and `models`, which every process judges alike, apply, and so does the rest of the
  // file (a key revoked in the same edit must stop working; refusing the whole file kept it working).
  const withoutLimits = (fromFile: readonly KeyEntryDigest[]) => {
    const limited = fromFile.filter((k) => hasCountedLimits(k.policy)).map((k) => k.name);
    if (workers === 1 || limited.length === 0) return null;
    return {
      entries: fromFile.map((k) => (k.policy !== undefined && hasCountedLimits(k.policy) ? { ...k, policy: withoutCountedLimits(k.policy) } : k)),
      why: `it gives limits to ${limited.slice(0, 3).join(', ')}${limited.length > 3 ? ', ...' : ''}, but the proxy runs ${workers} processes, each of which would allow the full limit: those limits are not applied (the rest of the file is); set proxy.workers: 1 and restart llmserve to use limits`,
    };
  };
  const keys = await createKeyRing(settings.keys, settings.keysFile, logger, {
    ...(deps.loadKeysFile === undefined ? {} : { load: deps.loadKeysFile }),
    unservable: withoutLimits,
    ...(settings.fileKeys === undefined ? {} : { lastFromFile: settings.fileKeys }),
    ...(deps.onKeysLoaded === undefined ? {} : { onLoaded: deps.onKeysLoaded }),
    // Every worker reads the same file: one says what it found; the primary says each distinct error once.
    announce: announceWarnings,
    ...(deps.onKeysError === undefined ? {} : { reportError: deps.onKeysError }),
  });
  const { onStoreWarning } = deps;
  const opening = onStoreWarning === undefined ? announce : { ...announce, warn: (msg: string) => onStoreWarning(msg) };
  const cost = await createCostControl(settings.usage ?? { dir: null, track: 'limited', flushInterval: 5 }, keys.entries(), state, announce, [
    settings.servedModelName,
    ...(router?.targets.map((t) => t.name) ?? []),
    ...Object.keys(settings.modelAliases),
    // LoRA adapters are served names too: their usage is their own, not `other`.
    ...(settings.loraNames ?? []),
  ], opening);
  if (deps.gatherMetrics !== undefined) cost.metrics.gather = deps.gatherMetrics;
  if (typeof settings.restarts === 'number') cost.metrics.setRestarts(settings.restarts);
  // Every worker reads the same files and finds the same fault: its primary says each error once (announce.error
  // would not: errors are never quieted).
  const reportReloadError = deps.onKeysError ?? ((message: string) => logger.error(message));
  // The material served goes up to the supervisor (through the primary), which gives it to a proxy restarted later.
  const tlsLoaded = (m: TlsMaterial) => deps.onTlsLoaded?.({ cert: m.cert.toString('latin1'), key: m.key.toString('latin1') });
  let tls: TlsMaterial | null = null;
  if (settings.tls !== null) {
    let fellBack = false;
    tls = await loadTlsOr(settings.tls, settings.tlsInForce, (why) => {
      fellBack = true;
      reportReloadError(`TLS files do not load now: ${why}`);
    });
    if (!fellBack) tlsLoaded(tls);
  }
  const certificateWatch = tls === null || settings.tls === null ? null : watchCertificateDates(tls, settings.tls.cert, (msg) => announceWarnings.warn(msg));

  const forwarder = createForwarder({
    backendUrl: settings.backendUrl,
    firstByteTimeout: settings.firstByteTimeout,
    maxBodyBytes: settings.maxBodyBytes,
    ...(settings.upstreamIdleMs === undefined ? {} : { idleSocketMs: settings.upstreamIdleMs }),
    logger,
    now,
    onStream: () => cost.metrics.streams.inc(1),
  });
  heardFrom = deps.heardFrom ?? ((url) => forwarder.msSinceHeard(url));
  const handle = createHandler({
    settings,
    state: () => state,
    stopping: () => stopping,
    keys,
    forwarder,
    health: createBackendHealth(settings.backendUrl, now, heardFrom),
    startedAt: Math.floor(Date.now() / 1000),
    cost,
    router,
  });
  const accessLog = createAccessLog(logger);

  let inflight = 0;
  // True once close() cuts what is left: a response still open then was cut by the proxy, not left by its client.
  let cutting = false;
  const idleWaiters = new Set<() => void>();
  // Each connection's latest exchange: a response queued behind it (pipelining) marks where its bytes end.
  const latest = new WeakMap<Socket, Exchange>();
  // Each connection's responses queued behind another (pipelining) that have no socket yet.
  const queued = new WeakMap<Socket, Set<ServerResponse>>();
  const onRequest = (expectContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    // A request that arrives after this connection's last answer (`Connection: close`: a refusal whose body a lingering
    // close still reads, with a pipelined request behind it) is never run: RFC 9112 forbids it, and its client,
    // which sees the connection close without an answer, sends it again elsewhere. The close follows (linger.ts).
    if (req.socket.writableEnded) {
      req.resume();
      return;
    }
    // Node's parser stops reading at an Upgrade head and drops what follows, since nothing here takes the upgrade:
    // a request pipelined behind it would wait for ever on an open connection. Closed after its answer instead.
    if (req.headers.upgrade !== undefined) res.shouldKeepAlive = false;
    // From here on every check, the access log and vLLM read the origin-form (routes.ts); a leading `/` costs nothing.
    if (req.url !== undefined && req.url.charCodeAt(0) !== 47 /* / */) req.url = originForm(req.url);
    const ex = newExchange(now(), req.method ?? 'GET', req.url, req.socket, req.headers['x-request-id']);
    // Why in the request's own headers: from there the id goes to vLLM with the others (upstreamHeaders), and every
    // answer takes it back (forward.ts, errors.ts) without res.setHeader, which would put each forwarded answer on
    // Node's slower writeHead path.
    req.headers['x-request-id'] = ex.requestId;
    inflight++;
    cost.metrics.inflight.inc(1);
    res.once('close', () => {
      ex.closed = true;
      // Not kept past its end for an idle keep-alive connection (a request queued behind it took it already).
      if (latest.get(req.socket) === ex) latest.delete(req.socket);
      if (cutting && ex.answered === null && !res.writableFinished) ex.answered = 'shutdown';
      inflight--;
      cost.metrics.inflight.inc(-1);
      const end = now();
      if (!ex.health || settings.logHealth) accessLog(ex, res, end);
      // Health probes are neither a key's usage nor traffic worth a metric.
      if (!ex.health) cost.finish(ex, finalStatus(ex, res), end - ex.start);
      if (inflight === 0) for (const wake of idleWaiters) wake();
    });
    const ahead = res.socket === null ? latest.get(req.socket) : undefined;
    latest.set(req.socket, ex);
    // A response queued behind another on a pipelined connection has no socket yet, and Node never emits its 'close'
    // when the connection closes first: the socket's close stands in for it, so that the exchange ends exactly once
    // (its in-flight count, its key's max_parallel slot, its usage row, its upstream call). Only then: a response
    // that holds the socket gets its own 'close'.
    if (res.socket === null) {
      const socket = req.socket;
      // One 'close' listener per connection for all its queued responses: one per response put Node's "possible
      // EventEmitter memory leak" warning in the log from any client that pipelines 11 requests (no key needed).
      let waiting = queued.get(socket);
      if (waiting === undefined) {
        const set = new Set<ServerResponse>();
        queued.set(socket, (waiting = set));
        socket.once('close', () => {
          for (const r of set) if (r.socket === null) r.emit('close');
        });
      }
      const own = waiting;
      own.add(res);
      res.once('close', () => own.delete(res));
      // Its bytes start when Node hands it the socket: at the 'finish' of the response ahead, which is still being
      // written as this request arrives, and whose own 'close' (and log line) comes a tick later, after this
      // response's first bytes. Only pipelined requests pay for this listener; streaming pays nothing per chunk.
      ex.bytesAtStart = null;
      // Handled only at its turn, as nginx handles pipelined requests: one at a time per connection. Its answer could
      // not go out before the one ahead anyway, and handled at once, every request a client pipelines behind a stream
      // started a generation of its own in vLLM (and an upstream connection: a few hundred in one write could spend
      // the proxy's descriptors), for answers buffered here until their turn. Not one whose body Node cannot hold
      // whole meanwhile (over its buffer, chunked, or awaiting a 100 Continue): unread, it would stall the connection
      // until body_timeout cut it, the stream ahead with it.
      const waits = !expectContinue && bodyFitsBuffer(req);
      res.once('socket', () => {
        ex.bytesAtStart = socket.bytesWritten;
        if (ahead !== undefined) ahead.bytesAtEnd = ex.bytesAtStart;
        if (waits) handle(req, res, ex, expectContinue);
      });
      if (waits) return;
    }
    handle(req, res, ex, expectContinue);
  };

  // Node's timeouts: `requestTimeout` covers receiving the request only, so it never cuts a long stream; Node
  // refuses a headersTimeout above requestTimeout, hence the min. keepAliveTimeout (`proxy.keep_alive_timeout`) must
  // exceed the idle timeout of the load balancer in front: one that reuses a connection the proxy has just closed
  // answers its client 502 (AWS ALB: 60 s by default, often raised for long generations; Google's: 600 s).
  const requestTimeout = Math.round(settings.bodyTimeout * 1000);
  const headersTimeout = Math.round(settings.headersTimeout * 1000);
  const effectiveHeadersTimeout = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout;
  const serverOptions: http.ServerOptions = {
    requestTimeout,
    headersTimeout: effectiveHeadersTimeout,
    keepAliveTimeout: Math.round(settings.keepAliveTimeout * 1000),
    // Node answers an HTTP/1.1 request without Host with a bare 400 of its own, before any 'request' event: the handler
    // refuses it instead (errors.missingHost), in OpenAI's shape and in the access log like every other refusal.
    requireHostHeader: false,
    connectionsCheckingInterval: checkingInterval([requestTimeout, effectiveHeadersTimeout]),
  };
  const server = tls === null ? http.createServer(serverOptions) : https.createServer({ ...serverOptions, cert: tls.cert, key: tls.key });
  // Every header in req.headers, not Node's default first 2,000: its parser frames the body by all of them, so a
  // Content-Length past the 2,000th framed a body the proxy never saw, whose bytes then reached vLLM as a request of
  // their own (a key-free pre-flight carried any route). The 16 KB head limit still bounds the count.
  server.maxHeadersCount = 0;
  server.on('request', onRequest(false));
  // Answer `Expect: 100-continue` only after auth, route and size checks pass (see handler.ts).
  server.on('checkContinue', onRequest(true));
  // Any other expectation: the handler refuses it (417), in OpenAI's shape and logged; Node's own 417 was bare.
  server.on('checkExpectation', onRequest(false));
  const http2Client = burstWarner(
    (msg, fields) => logger.warn(msg, fields),
    'an HTTP/2 client (prior knowledge, h2c) reached the proxy, which speaks HTTP/1.1: set the client, or the mesh in front (Istio: a port named http-*, appProtocol http), to HTTP/1.1',
  );
  // A listener replaces Node's default answer, so keep its statuses: 408 for the header/body timeouts.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    // A response under way on this connection (a 413 while the body still comes, a pipelined request behind a
    // stream), or one still to come for a request received whole (the error is then a pipelined request's behind
    // it, whose answer vLLM has not sent yet): an answer written now would land inside it, or be read as its answer
    // (responses go in request order). Close instead. Node's own handler closes only for the first case.
    // `_httpMessage` is the connection's pending response until it finishes; a timeout on a request still arriving
    // (its body stopped) is that request's own error, and gets its 408.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean; req?: { complete?: boolean } } | null })._httpMessage;
    // Bytes after a request that said `Connection: close` (or an HTTP/1.0 one without keep-alive): that request still
    // gets its answer, and the connection closes after it; what follows is ignored (RFC 9112 9.6). Still read (each
    // read ends here again), not paused: a client that leaves must still be seen, so that its generation is stopped.
    if (err.code === 'HPE_CLOSED_CONNECTION' && inFlight != null) return;
    // A request whose body broke or stopped coming (its head began an exchange, the latest on the connection: nothing
    // behind it was parsed yet) is logged with the answer it gets here, not as a client that left (499).
    const ex = inFlight?.req?.complete === false ? latest.get(socket as Socket) : undefined;
    if (ex !== undefined && !ex.closed && ex.answered === null) ex.answered = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request-timeout' : 'bad-request';
    if (inFlight?.headersSent === true || inFlight?.req?.complete === true) return void socket.destroy();
    if (err.code === 'HPE_PAUSED_H2_UPGRADE') {
      // Node's parser stops at an HTTP/2 preface (prior knowledge): answered in HTTP/2, and said once per burst, since
      // the fix is the client's or the mesh's setting, which only the operator can change.
      http2Client({ from: (socket as Socket).remoteAddress ?? '-' }, 'h2');
      return refuseRaw(socket as Socket, http2Refusal(), 'PRI', '*');
    }
    const answer = clientErrorResponse(err.code);
    // A request refused before its head was read whole (headers too large, not HTTP, a head that stopped coming) has
    // no exchange, so nothing else would log it: the access log and the request metrics show it here, as nginx logs
    // its 400s. No key, method or path is known yet; the time is the refusal's.
    if (inFlight == null) refuseRaw(socket as Socket, answer, '-', '-');
    else socket.end(answer.raw);
  });
  /** Ends the connection with `answer`, logged and counted as a request (`method`, `path`) of no exchange. */
  const refuseRaw = (socket: Socket, answer: { status: number; raw: string | Buffer }, method: string, path: string): void => {
    const refused = newExchange(now(), method, path, socket);
    socket.end(answer.raw);
    const end = now();
    accessLog(refused, { writableFinished: true, statusCode: answer.status }, end);
    cost.finish(refused, answer.status, end - refused.start);
  };
  // CONNECT (a client told to use llmserve as a forward proxy for https://): Node hands the raw socket to this event
  // and, with no listener, dropped the connection without a word. Nothing is tunnelled: a 405, logged.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {});
    refuseRaw(socket, connectRefused(), 'CONNECT', req.url ?? '-');
  });

  if (server instanceof https.Server) {
    // Plain HTTP sent to the TLS port (a client given http:// for an https:// proxy): OpenSSL recognises the request
    // line, and nginx answers it with a 400 in plain text. Without this the client saw an empty reply ("socket hang
    // up") that named no cause. Why `_parent`: the TCP socket under the TLS one, the only way to answer in clear.
    const plainHttp = burstWarner((msg, fields) => logger.warn(msg, fields), 'plain HTTP request sent to the HTTPS port: the client must use https://');
    server.on('tlsClientError', (err: NodeJS.ErrnoException, tlsSocket) => {
      // OpenSSL names a request line only for GET, POST, HEAD and PUT; DELETE, OPTIONS, PATCH (any other bytes that
      // are no TLS record) are a wrong version to it. Either way the client spoke no TLS: the same answer.
      if (err.code !== 'ERR_SSL_HTTP_REQUEST' && err.code !== 'ERR_SSL_WRONG_VERSION_NUMBER') return;
      plainHttp({ from: tlsSocket.remoteAddress ?? '-' }, 'http');
      const raw = (tlsSocket as unknown as { _parent?: Socket | null })._parent;
      if (raw?.writable === true) raw.end(clientErrorResponse('ERR_SSL_HTTP_REQUEST').raw);
    });
  }
  const port = await listen(server, settings.host, settings.port).catch((err: unknown) => {
    certificateWatch?.stop();
    forwarder.close();
    cost.close();
    throw err;
  });
  // `proxy.metrics_port`: /metrics without a key, on loopback only.
  let metricsServer: http.Server | null = null;
  if (settings.metricsPort !== undefined && settings.metricsPort !== null) {
    const ms = http.createServer((req, res) => {
      if (normalisedMetricsPath(req.url) && (req.method === 'GET' || req.method === 'HEAD')) {
        void cost.metrics.render(metricsBackends(settings, router)).then((text) => {
          res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
          res.end(req.method === 'HEAD' ? undefined : text);
        });
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('only /metrics here\n');
    });
    try {
      const mport = await listen(ms, '127.0.0.1', settings.metricsPort);
      metricsServer = ms;
      announce.info(`metrics on http://127.0.0.1:${mport}/metrics`);
    } catch (err) {
      server.close();
      server.closeAllConnections();
      certificateWatch?.stop();
      forwarder.close();
      cost.close();
      throw err;
    }
  }
  const backendsText = router === null ? settings.backendUrl : router.targets.map((t) => `${t.name} at ${t.url}`).join(', ');
  announce.info(`listening on ${tls === null ? 'http' : 'https'}://${settings.host}:${port} -> ${backendsText}`);

  const waitIdle = (timeoutMs: number) =>
    new Promise<void>((resolve) => {
      if (inflight === 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      idleWaiters.add(done);
    });

  let closing: Promise<void> | null = null;
  return {
    port,
    setState(next, model) {
      const target = model === undefined ? undefined : router?.targets.find((t) => t.name === model);
      if (target !== undefined) {
        if (next !== target.state) announce.info(`backend state of "${model}": ${target.state} -> ${next}`);
        target.state = next;
        if (state === 'draining') return;
        next = router!.overall();
      }
      if (next !== state) announce.info(`backend state: ${state} -> ${next}`);
      state = next;
      cost.setState(next);
    },
    setRestarts(total) {
      cost.metrics.setRestarts(total);
    },
    markStopping() {
      stopping = true;
    },
    reloadKeys: async () => {
      const count = await keys.reload();
      cost.setPolicies(keys.entries());
      return count;
    },
    async reloadTls() {
      if (settings.tls === null || !(server instanceof https.Server)) return;
      try {
        const material = await loadTls(settings.tls);
        server.setSecureContext({ cert: material.cert, key: material.key });
        tlsLoaded(material);
        announce.info(`TLS certificate reloaded from ${settings.tls.cert} (valid until ${material.validTo})`);
        certificateWatch?.served(material);
      } catch (err) {
        reportReloadError(`TLS certificate not reloaded, the one in use stays: ${(err as Error).message}`);
      }
    },
    async drain(timeoutMs) {
      state = 'draining';
      // Every worker drains; with several, the primary says the sum of their counts once (the supervisor reports
      // what is left over all of them at the end).
      if (deps.onDraining !== undefined) deps.onDraining(inflight, timeoutMs);
      else logger.info(`draining: ${inflight} requests in flight, waiting up to ${timeoutMs} ms`);
      await waitIdle(timeoutMs);
      // Idle keep-alive connections would otherwise hold the process open.
      server.closeIdleConnections();
      return inflight;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        let open = metricsServer === null ? 1 : 2;
        const done = () => {
          if (--open > 0) return;
          // The last batch of usage is written before the process goes, but only once the requests cut just
          // below (streams that outlived the drain, the costliest ones) are counted: that happens in their
          // responses' 'close' events, which Node emits after the server's own 'close'. Bounded, like the drain.
          void waitIdle(1000).then(() => {
            cost.close();
            resolve();
          });
        };
        cutting = true;
        certificateWatch?.stop();
        server.close(done);
        server.closeAllConnections();
        metricsServer?.close(done);
        metricsServer?.closeAllConnections();
        forwarder.close();
      });
      return closing;
    },
    inflight: () => inflight,
    metricsSnapshot: () => cost.metrics.snapshot(),
    metricsUnsummed: () => cost.metrics.unsummedNames(),
    speak: () => {
      quiet = false;
    },
    backendActivity: () => {
      const urls = router === null ? [settings.backendUrl] : router.targets.map((t) => t.url);
      return { sinceMs: Object.fromEntries(urls.map((url) => [url, forwarder.msSinceHeard(url)])), waiting: Object.fromEntries(urls.map((url) => [url, forwarder.waitingOn(url)])) };
    },
  };
}

/** Binds the server, turning EADDRINUSE and friends into errors that name the address. */
function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') reject(new LlmserveError('PORT_IN_USE', `port ${port} on ${host} is already in use`, { cause: err }));
      else if (err.code === 'EACCES') reject(new LlmserveError('PORT_IN_USE', `no permission to listen on port ${port} on ${host}`, { cause: err }));
      else reject(new LlmserveError('RUNTIME', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // 511 (Node's default) is below a burst of 1,000 clients connecting at once: the SYNs over it are dropped and
    // retried after 1 s and 3 s (TTFB p99 of 4 s in the bench). The kernel caps this at net.core.somaxconn.
    server.listen({ port, host, backlog: LISTEN_BACKLOG });
  });
}

/** The accept queue asked for: nginx's bench configuration uses the same; Linux caps it at net.core.somaxconn. */
const LISTEN_BACKLOG = 4096;

/** True for /metrics (with or without a query string). */
function normalisedMetricsPath(url: string | undefined): boolean {
  const raw = url ?? '';
  const q = raw.indexOf('?');
  return (q >= 0 ? raw.slice(0, q) : raw) === '/metrics';
}

/**
 * How often Node looks for requests past their header or body timeout. Why not its default: Node checks only every
 * 30 s, so a 5 s headers_timeout fired after up to 35 s. A quarter of the shortest timeout, between 250 ms and 1 s
 * (the check walks the open connections; once a second is nothing even with thousands of streams).
 */
function checkingInterval(timeoutsMs: readonly number[]): number {
  const set = timeoutsMs.filter((t) => t > 0);
  if (set.length === 0) return 30_000;
  return Math.min(1000, Math.max(250, Math.round(Math.min(...set) / 4)));
}

/** A request with no body, or one small enough that Node's parser takes it whole into the request's own buffer. */
function bodyFitsBuffer(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return false;
  const length = declaredLength(req);
  return length === null || length <= req.readableHighWaterMark;
}
