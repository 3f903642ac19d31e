// One HTTP GET with a deadline (the supervisor's health checks; `check` uses it only for https).
import type http from 'node:http';

/** The outcome of one check: never throws. */
export interface HttpCheckResult {
  ok: boolean;
  status: number | null;
  ms: number;
  error: string | null;
  body: string;
  /** No answer within the deadline (as against a refused connection or an error status). */
  timedOut?: boolean;
}

/** GETs a URL and reports status, time and body (up to `maxBodyBytes`, 64 KiB by default); `ok` when the status is 2xx. */
export function httpGet(url: string, options: { timeoutMs: number; headers?: Record<string, string>; insecure?: boolean; maxBodyBytes?: number }): Promise<HttpCheckResult> {
  const started = performance.now();
  // Loaded on first use: `check` bundles this module but reaches it only for https URLs, and node:http/node:https
  // cost it several ms of start-up (a module import is cached, so later calls pay nothing).
  if (url.startsWith('https:')) return import('node:https').then((https) => request(https.default, url, options, started));
  return import('node:http').then((h) => request(h.default, url, options, started));
}

/** The GET itself, over http or https. */
function request(client: typeof http | typeof import('node:https'), url: string, options: { timeoutMs: number; headers?: Record<string, string>; insecure?: boolean; maxBodyBytes?: number }, started: number): Promise<HttpCheckResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: Omit<HttpCheckResult, 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, ms: Math.round((performance.now() - started) * 10) / 10 });
    };
    // agent: false: a fresh connection per check, so a dead backend cannot hide behind a pooled socket.
    const req = client.get(url, { headers: options.headers ?? {}, agent: false, rejectUnauthorized: !options.insecure }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < (options.maxBodyBytes ?? 65536)) chunks.push(chunk);
        size += chunk.length;
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        finish({ ok: status >= 200 && status < 300, status, error: null, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => finish({ ok: false, status: res.statusCode ?? null, error: err.message, body: '' }));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, status: null, error: `timed out after ${options.timeoutMs} ms`, body: '', timedOut: true });
    }, options.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, status: null, error: err.code ?? err.message, body: '' }));
  });
}
