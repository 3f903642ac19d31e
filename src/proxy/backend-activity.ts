// What the proxy knows about each backend's traffic, for the supervisor's health loop: when the backend last sent
// response bytes (a slow /health: busy or hung?) and the exchanges waiting on it (an engine that stalled?).
import { isMap } from '../config/values.js';
import type { WaitingOn } from './upstream/client.js';

/**
 * Per backend URL: ms since it last sent response bytes (null: never); and the exchanges waiting on it alone, with ms
 * since any of them last got bytes (UpstreamPool.waitingOn).
 */
export interface BackendActivity {
  sinceMs: Record<string, number | null>;
  waiting: Record<string, WaitingOn>;
}

/** Nothing heard from anyone yet: the start of a merge. */
export function noActivity(): BackendActivity {
  return { sinceMs: {}, waiting: {} };
}

/**
 * Folds one process's answer (a proxy worker's, as it came over IPC: checked here) into `into`: the most recent
 * bytes of any process; the waiting exchanges of all of them summed, with the most recent bytes any of them got.
 */
export function mergeActivity(into: BackendActivity, from: { sinceMs?: unknown; waiting?: unknown }): void {
  for (const [url, ms] of Object.entries(isMap(from.sinceMs) ? from.sinceMs : {})) {
    const known = into.sinceMs[url];
    if (typeof ms === 'number' && (typeof known !== 'number' || ms < known)) into.sinceMs[url] = ms;
    else if (known === undefined) into.sinceMs[url] = null;
  }
  for (const [url, w] of Object.entries(isMap(from.waiting) ? from.waiting : {})) {
    if (!isMap(w) || !isCount(w.count) || !(w.heardMs === null || (typeof w.heardMs === 'number' && w.heardMs >= 0))) continue;
    const known = into.waiting[url] ?? { count: 0, heardMs: null };
    const heardMs = known.heardMs === null ? w.heardMs : w.heardMs === null ? known.heardMs : Math.min(known.heardMs, w.heardMs);
    into.waiting[url] = { count: known.count + w.count, heardMs };
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}
