// Run the checks concurrently, each with its own deadline, and judge each response.
import type { HttpCheckResult } from '../probes/http-check.js';
import { busyInReadiness, coversCheck } from './busy.js';
import type { CheckReport, CheckResult, CheckSpec, CheckTargets } from './types.js';

/** One GET with a deadline (probes/http-check's httpGet, injected for tests). */
export type HttpGet = (url: string, options: { timeoutMs: number; headers?: Record<string, string>; insecure?: boolean }) => Promise<HttpCheckResult>;

const AUTHENTICATED = 'proxy /v1/models';
/** How long a check of vLLM may take before the proxy is asked whether vLLM is busy. */
const ASK_READINESS_AFTER_MS = 250;

function base(scheme: 'http' | 'https', host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The checks to run for these targets, and the ones skipped with their reason; pure. */
export function planChecks(t: CheckTargets): { specs: CheckSpec[]; skipped: { name: string; reason: string }[] } {
  const backend = base('http', t.backend.host, t.backend.port);
  const proxy = base(t.proxy.tls ? 'https' : 'http', t.proxy.host, t.proxy.port);
  const expect = t.model === null ? {} : { expectModel: t.model };
  // Several models: every vLLM is checked, each for its own model.
  const vllms = t.backends?.map((b) => ({ tag: `vllm ${b.model}`, model: b.model, url: base('http', b.host, b.port), expect: { expectModel: b.model } })) ?? [{ tag: 'vllm', model: undefined, url: backend, expect }];
  const specs: CheckSpec[] = [
    ...vllms.flatMap((v): CheckSpec[] => [
      { name: `${v.tag} /health`, url: `${v.url}/health`, saturable: true, ...(v.model === undefined ? {} : { backendOf: v.model }) },
      { name: `${v.tag} /v1/models`, url: `${v.url}/v1/models`, saturable: true, ...v.expect, ...(v.model === undefined ? {} : { backendOf: v.model }) },
    ]),
    { name: 'proxy /health/liveness', url: `${proxy}/health/liveness` },
  ];
  const skipped: { name: string; reason: string }[] = [];
  // Several models under `any`: the proxy no longer lists a model that gave up for good, so its list passes with any
  // one of them (the first one's absence would fail a pod that still serves the others).
  const listed = t.require === 'any' && t.backends !== undefined ? { expectOneOf: t.backends.map((b) => b.model) } : expect;
  if (!t.auth) specs.push({ name: AUTHENTICATED, url: `${proxy}/v1/models`, saturable: true, ...listed });
  else if (t.key !== null) specs.push({ name: AUTHENTICATED, url: `${proxy}/v1/models`, saturable: true, headers: { authorization: `Bearer ${t.key}` }, ...listed });
  else skipped.push({ name: `${AUTHENTICATED} (authenticated)`, reason: t.skipAuthenticated ?? 'no key known' });
  return { specs, skipped };
}

/** Model ids listed in an OpenAI `/v1/models` body; null when the body is not that shape. */
export function listedModels(body: string): string[] | null {
  try {
    const doc = JSON.parse(body) as { data?: unknown };
    if (!Array.isArray(doc.data)) return null;
    return doc.data.map((m: unknown) => (m !== null && typeof m === 'object' && typeof (m as { id?: unknown }).id === 'string' ? (m as { id: string }).id : '')).filter((id) => id !== '');
  } catch {
    return null;
  }
}

function snippet(body: string): string {
  const one = body.replace(/\s+/g, ' ').trim();
  return one.length > 160 ? `${one.slice(0, 160)}…` : one;
}

const quoted = (ids: readonly string[]): string => ids.map((i) => `"${i}"`).join(', ');

/** Judges one response: a 2xx, and for a model list, the expected model (or one of them) in it; pure. */
export function judge(spec: CheckSpec, res: HttpCheckResult): CheckResult {
  const out: CheckResult = { name: spec.name, url: spec.url, ok: res.ok, status: res.status, ms: res.ms, error: res.error };
  if (res.status !== null && !res.ok && out.error === null) out.error = `HTTP ${res.status}${res.body ? `: ${snippet(res.body)}` : ''}`;
  const wanted = spec.expectOneOf ?? (spec.expectModel === undefined ? undefined : [spec.expectModel]);
  if (out.ok && wanted !== undefined) {
    const ids = listedModels(res.body);
    const missing = wanted.length === 1 ? `model ${quoted(wanted)} is not listed` : `none of the models ${quoted(wanted)} is listed`;
    if (ids === null) out.error = `not a model list: ${snippet(res.body) || '(empty body)'}`;
    else if (!wanted.some((m) => ids.includes(m))) out.error = `${missing} (listed: ${ids.length ? quoted(ids) : 'none'})`;
    out.ok = out.error === null;
  }
  return out;
}

/** Runs every check at once; resolves when all have answered or timed out (a busy vLLM's within the same deadline). */
export async function runChecks(t: CheckTargets, timeoutMs: number, get: HttpGet): Promise<CheckReport> {
  const { specs, skipped } = planChecks(t);
  const readiness = askReadinessOnce(t, timeoutMs, get);
  const checks = await Promise.all(
    specs.map(async (spec) => {
      // A check of vLLM still unanswered after 250 ms (a healthy one answers in a few): ask the proxy, while there is
      // time left for its readiness (which gives /health 1 s), whether vLLM is saturated. Not asked when everything
      // answers in time, so a healthy service sees the same requests as before.
      const slow = spec.saturable === true ? setTimeout(readiness.ask, Math.min(timeoutMs / 2, ASK_READINESS_AFTER_MS)) : undefined;
      const started = performance.now();
      let res = await get(spec.url, { timeoutMs, insecure: true, ...(spec.headers ? { headers: spec.headers } : {}) });
      // A 401 to a key of the keys file: the proxy may not have loaded it yet (no SIGHUP since it was added), so the
      // file's other keys are tried within what is left of the deadline; the proxy refusing them all still fails.
      if (spec.name === AUTHENTICATED && spec.headers !== undefined) {
        for (const other of t.fallbackKeys ?? []) {
          const left = Math.round(timeoutMs - (performance.now() - started));
          if (res.status !== 401 || left <= 0) break;
          res = await get(spec.url, { timeoutMs: left, insecure: true, headers: { authorization: `Bearer ${other}` } });
        }
      }
      clearTimeout(slow);
      if (res.timedOut === true && spec.saturable === true) {
        const busy = await readiness.ask();
        // A check of no one model's vLLM (one model, or one port of several picked with --backend-port) is that of
        // the model it expects: another model's traffic must not excuse a hung vLLM on this port.
        if (busy !== null && coversCheck(busy, spec.backendOf ?? t.model ?? undefined)) return busyResult(spec, res, timeoutMs);
      }
      return judge(spec, res);
    }),
  );
  return { healthy: isHealthy(t, specs, checks), checks, skipped };
}

/**
 * The proxy's `/health/readiness`, asked at most once and only on demand, within what is left of the deadline. Why
 * the proxy: a saturated vLLM answers every request late (/health, /v1/models: its API server's event loop is busy
 * with the traffic), so only the proxy, which relays its responses, can tell it from a hung one; readiness says
 * `busy: ...` for a backend whose /health timed out while its bytes flowed (proxy/health.ts).
 */
function askReadinessOnce(t: CheckTargets, timeoutMs: number, get: HttpGet): { ask: () => Promise<ReturnType<typeof busyInReadiness>> } {
  const started = performance.now();
  let answer: Promise<ReturnType<typeof busyInReadiness>> | null = null;
  const url = `${base(t.proxy.tls ? 'https' : 'http', t.proxy.host, t.proxy.port)}/health/readiness`;
  return {
    ask: () => {
      const left = Math.round(timeoutMs - (performance.now() - started));
      answer ??= left <= 0 ? Promise.resolve(null) : get(url, { timeoutMs: left, insecure: true }).then((r) => (r.status === null ? null : busyInReadiness(r.body)));
      return answer;
    },
  };
}

/** A timed-out check of a vLLM that the proxy says is busy: passed, and marked so. */
function busyResult(spec: CheckSpec, res: HttpCheckResult, timeoutMs: number): CheckResult {
  return {
    name: spec.name,
    url: spec.url,
    ok: true,
    status: null,
    ms: res.ms,
    error: null,
    busy: `no answer within ${timeoutMs} ms, but the proxy is relaying vLLM's responses: saturated, not hung`,
  };
}

/**
 * Every check passed; with several models under `probes.require: any`, the vLLM checks need to pass for one model
 * only, as for start's `not-healthy` (a liveness probe must not restart a pod that still serves); pure.
 */
export function isHealthy(t: CheckTargets, specs: readonly CheckSpec[], checks: readonly CheckResult[]): boolean {
  if (t.require !== 'any' || t.backends === undefined) return checks.every((c) => c.ok);
  const modelOk = new Map<string, boolean>();
  let othersOk = true;
  checks.forEach((c, i) => {
    const model = specs[i]?.backendOf;
    if (model === undefined) othersOk &&= c.ok;
    else modelOk.set(model, (modelOk.get(model) ?? true) && c.ok);
  });
  return othersOk && [...modelOk.values()].some(Boolean);
}

/**
 * A Ray worker's check (`--role worker`): it serves no HTTP (vLLM and the proxy run on the head), so its health is
 * what it writes in its probe files: healthy when neither is there; pure (`exists` is asked of the two files).
 */
export function workerReport(worker: { pid: number; head: string }, probeDir: string, exists: (file: string) => boolean): CheckReport {
  const notReady = exists(`${probeDir}/not-ready`);
  const notHealthy = exists(`${probeDir}/not-healthy`);
  const error = notHealthy
    ? `not-healthy is present: the worker cannot reach its head ${worker.head} (ray status fails), or Ray is restarting`
    : notReady
      ? `not-ready is present: not joined to the Ray cluster at ${worker.head} yet`
      : null;
  return {
    healthy: error === null,
    checks: [{ name: 'ray worker (probe files)', url: probeDir, ok: error === null, status: null, ms: 0, error }],
    skipped: [{ name: 'vLLM and proxy checks', reason: `a Ray worker (pid ${worker.pid}) runs here: it serves no HTTP, vLLM and the proxy run on the head` }],
  };
}
