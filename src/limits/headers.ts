// OpenAI's rate-limit headers: x-ratelimit-{limit,remaining,reset}-{requests,tokens}, and Retry-After.

/**
 * A duration rounded to the microsecond first. Why: the windows subtract fractional monotonic clock readings, and
 * `newest + 60000 - now` with newest == now comes out as 60000.000000000007 ms, which rounding up made a minute and a
 * second (`1m1s`, Retry-After 61) on about one request in fifteen.
 */
function settled(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A duration the way OpenAI writes reset times: `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export function formatReset(ms: number): string {
  const t = Math.max(0, Math.ceil(settled(ms)));
  if (t < 1000) return `${t}ms`;
  if (t < 60_000) return `${Number((t / 1000).toFixed(3))}s`;
  const totalS = Math.ceil(t / 1000);
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  return h > 0 ? `${h}h${m}m${s}s` : `${m}m${s}s`;
}

/** Whole seconds for Retry-After, at least 1. */
export function retryAfter(ms: number): string {
  return String(Math.max(1, Math.ceil(settled(ms) / 1000)));
}

/** The three headers of one dimension (`requests` or `tokens`). */
export function rateHeaders(out: Record<string, string>, kind: 'requests' | 'tokens', limit: number, used: number, resetMs: number): void {
  out[`x-ratelimit-limit-${kind}`] = String(limit);
  out[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(limit - used)));
  out[`x-ratelimit-reset-${kind}`] = formatReset(resetMs);
}
