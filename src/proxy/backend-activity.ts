// What the proxy knows about each backend's traffic, for the supervisor's health loop: when the backend last sent
// response bytes (a slow /health: busy or hung?) and how many exchanges wait on it (an engine that stalled?).

/** Per backend URL: ms since it last sent response bytes (null: never), and the exchanges waiting on it alone. */
export interface BackendActivity {
  sinceMs: Record<string, number | null>;
  waiting: Record<string, number>;
}

/** Nothing heard from anyone yet: the start of a merge. */
export function noActivity(): BackendActivity {
  return { sinceMs: {}, waiting: {} };
}

/**
 * Folds one process's answer (a proxy worker's, as it came over IPC: checked here) into `into`: the most recent
 * bytes of any process, the waiting exchanges of all of them summed.
 */
export function mergeActivity(into: BackendActivity, from: { sinceMs?: unknown; waiting?: unknown }): void {
  for (const [url, ms] of Object.entries(isRecord(from.sinceMs) ? from.sinceMs : {})) {
    const known = into.sinceMs[url];
    if (typeof ms === 'number' && (typeof known !== 'number' || ms < known)) into.sinceMs[url] = ms;
    else if (known === undefined) into.sinceMs[url] = null;
  }
  for (const [url, n] of Object.entries(isRecord(from.waiting) ? from.waiting : {})) {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0) into.waiting[url] = (into.waiting[url] ?? 0) + n;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
