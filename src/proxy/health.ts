// Readiness: the proxy's state plus a short, cached `GET /health` on the backend.
import http from 'node:http';
import https from 'node:https';

/** Answers whether the backend's /health says 200, asking at most once per `cacheMs`. */
export interface BackendHealth {
  check(): Promise<{ ok: boolean; detail: string }>;
}

/**
 * Milliseconds since a backend URL last sent response bytes to this proxy (every worker's, asked through the cluster
 * primary, with `proxy.workers` above 1); null when it never has.
 */
export type HeardFrom = (url: string) => number | null | Promise<number | null>;

/**
 * Builds the cached backend health check (concurrent probes share one request). A /health that does not answer in
 * time while the backend sent response bytes within `busyWindowMs` counts as healthy (busy): a saturated vLLM
 * answers /health late, and failing readiness would take a serving replica out of rotation at peak load, only to
 * put it back once the load moved elsewhere (the supervisor judges its own checks the same way).
 */
export function createBackendHealth(backendUrl: string, now: () => number, heardFrom: HeardFrom = () => null, timeoutMs = 1000, cacheMs = 250, busyWindowMs = 2000): BackendHealth {
  const url = new URL('/health', backendUrl);
  const client = url.protocol === 'https:' ? https : http;
  let cached: { at: number; result: { ok: boolean; detail: string } } | null = null;
  let pending: Promise<{ ok: boolean; detail: string }> | null = null;

  const ask = () =>
    new Promise<{ ok: boolean; detail: string }>((resolve) => {
      const req = client.get(url, { agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? { ok: true, detail: 'healthy' } : { ok: false, detail: `backend /health answered ${res.statusCode}` }));
        res.on('error', () => resolve({ ok: false, detail: 'backend /health broke off' }));
      });
      let timedOut = false;
      req.on('timeout', () => {
        timedOut = true;
        req.destroy();
        void Promise.resolve(heardFrom(backendUrl)).then((since) =>
          resolve(since !== null && since <= busyWindowMs
            ? { ok: true, detail: `busy: /health did not answer within ${timeoutMs} ms, but responses are flowing` }
            : { ok: false, detail: `backend unreachable (no answer within ${timeoutMs} ms)` }),
        );
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!timedOut) resolve({ ok: false, detail: `backend unreachable (${err.code ?? err.message})` });
      });
    });

  return {
    check() {
      if (cached !== null && now() - cached.at < cacheMs) return Promise.resolve(cached.result);
      if (pending === null) {
        pending = ask().then((result) => {
          cached = { at: now(), result };
          pending = null;
          return result;
        });
      }
      return pending;
    },
  };
}
