// OpenAI's rate-limit headers: x-ratelimit-{limit,remaining,reset}-{requests,tokens}, and Retry-After.

/** A duration the way OpenAI writes reset times: `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export function formatReset(ms: number): string {
  const t = Math.max(0, Math.ceil(ms));
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
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/** The three headers of one dimension (`requests` or `tokens`). */
export function rateHeaders(out: Record<string, string>, kind: 'requests' | 'tokens', limit: number, used: number, resetMs: number): void {
  out[`x-ratelimit-limit-${kind}`] = String(limit);
  out[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(limit - used)));
  out[`x-ratelimit-reset-${kind}`] = formatReset(resetMs);
}
