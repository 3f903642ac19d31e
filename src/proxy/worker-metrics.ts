// /metrics with `proxy.workers` > 1: the worker that gets a scrape asks the cluster primary, which asks every worker
// for a snapshot of its series and hands them all back; the worker sums them into the page. Without this a scrape
// would show the one worker the kernel happened to give the connection to.
import type { Worker } from 'node:cluster';
import type { RegistrySnapshot, SeriesSnapshot } from '../metrics/registry.js';
import { primaryAsker } from './ask-primary.js';

/** Counted by the cluster primary, which alone sees workers die and replaces them. */
export const WORKER_REPLACEMENTS_METRIC = 'llmserve_proxy_worker_replacements_total';

/** The messages between the primary and its workers. */
export type WorkerMetricsMessage =
  | { type: 'metrics-gather'; id: number }
  | { type: 'metrics-snapshot-request'; token: string }
  /**
   * `unsummed`: its gauges and max-merged metrics (Registry.unsummedNames), left out of what the primary keeps of a gone
   * worker.
   */
  | { type: 'metrics-snapshot'; token: string; snapshot: RegistrySnapshot; unsummed?: string[] }
  | { type: 'metrics-gathered'; id: number; snapshots: RegistrySnapshot[] };

/** A worker's side: `gather` for its ProxyMetrics, `handle` for the primary's messages. */
export interface MetricsGatherer {
  gather(): Promise<RegistrySnapshot[]>;
  /** Handles one message from the primary; false when it is not one of these. */
  handle(msg: { type?: unknown }): boolean;
}

/**
 * The worker's side; `own` is this worker's snapshot (the fallback when the primary does not answer in time),
 * `unsummed` the names of its gauges and max-merged metrics.
 */
export function metricsGatherer(send: (m: WorkerMetricsMessage) => void, own: () => RegistrySnapshot, unsummed: () => string[] = () => [], timeoutMs = 2000): MetricsGatherer {
  const asker = primaryAsker<RegistrySnapshot[]>((id) => send({ type: 'metrics-gather', id }), timeoutMs);
  return {
    gather: () => asker.ask(() => [own()]),
    handle(msg) {
      const m = msg as WorkerMetricsMessage;
      if (m.type === 'metrics-snapshot-request') {
        send({ type: 'metrics-snapshot', token: m.token, snapshot: own(), unsummed: unsummed() });
        return true;
      }
      if (m.type === 'metrics-gathered') {
        if (Array.isArray(m.snapshots)) asker.answer(m.id, m.snapshots);
        return true;
      }
      return false;
    },
  };
}

/**
 * The primary's side: answers a worker's `metrics-gather` with every live worker's snapshot. A worker that does not
 * answer in time is counted with its last snapshot: left out, its counters would drop for that scrape, and
 * Prometheus reads a drop as a counter reset (a spurious jump in rate() and increase()). For the same reason a worker
 * that is gone (`retire`, replaced by a new one) stays counted with its last counters and histograms, its gauges
 * (requests in flight, open streams) and the series every worker has alike (the restart count) left out; what every
 * gone worker counted is summed into one snapshot, so that a proxy whose workers die now and then does not grow.
 */
export function metricsCollector(
  workers: () => Iterable<Worker>,
  timeoutMs = 1000,
): { handle(from: Worker, msg: { type?: unknown }): boolean; retire(worker: Worker): void; replaced(): void } {
  let seq = 0;
  const last = new Map<Worker, RegistrySnapshot>();
  const unsummedOf = new Map<Worker, readonly string[]>();
  // What gone workers counted, as of their last snapshots, summed: part of every answer from now on.
  const retired: RegistrySnapshot = {};
  let replacements = 0;
  // Each open scrape's answers by worker: a worker that answers and then is gone before the scrape ends is in
  // `retired` by then, and its answer must leave the scrape (counted twice, the next scrape would read a drop).
  const open = new Map<string, { requester: Worker; id: number; waiting: Set<Worker>; answers: Map<Worker, RegistrySnapshot>; timer: NodeJS.Timeout }>();
  const finish = (token: string) => {
    const c = open.get(token);
    if (c === undefined) return;
    open.delete(token);
    clearTimeout(c.timer);
    const snapshots = [...c.answers.values()];
    for (const w of c.waiting) {
      const previous = last.get(w);
      if (previous !== undefined) snapshots.push(previous);
    }
    snapshots.push(retired);
    if (replacements > 0) snapshots.push({ [WORKER_REPLACEMENTS_METRIC]: [[[], replacements]] });
    if (c.requester.isConnected()) c.requester.send({ type: 'metrics-gathered', id: c.id, snapshots } satisfies WorkerMetricsMessage);
  };
  return {
    handle(from, msg) {
      const m = msg as WorkerMetricsMessage;
      if (m.type === 'metrics-gather') {
        const token = String(++seq);
        const targets = [...workers()].filter((w) => w.isConnected());
        // A worker that does not answer in time does not hold up the scrape (its last snapshot stands in).
        const timer = setTimeout(() => finish(token), timeoutMs);
        timer.unref();
        open.set(token, { requester: from, id: m.id, waiting: new Set(targets), answers: new Map(), timer });
        for (const w of targets) w.send({ type: 'metrics-snapshot-request', token } satisfies WorkerMetricsMessage);
        if (targets.length === 0) finish(token);
        return true;
      }
      if (m.type === 'metrics-snapshot') {
        last.set(from, m.snapshot);
        if (Array.isArray(m.unsummed)) unsummedOf.set(from, m.unsummed);
        const c = open.get(m.token);
        if (c !== undefined && c.waiting.delete(from)) {
          c.answers.set(from, m.snapshot);
          if (c.waiting.size === 0) finish(m.token);
        }
        return true;
      }
      return false;
    },
    retire(worker) {
      const snapshot = last.get(worker);
      const unsummed = new Set(unsummedOf.get(worker) ?? []);
      last.delete(worker);
      unsummedOf.delete(worker);
      if (snapshot !== undefined) for (const [name, series] of Object.entries(snapshot)) if (!unsummed.has(name)) addSeries(retired, name, series);
      // An open scrape counts it through `retired` now, not through its answer; one waiting on it alone is answered.
      for (const [token, c] of open) {
        c.answers.delete(worker);
        if (c.waiting.delete(worker) && c.waiting.size === 0) finish(token);
      }
    },
    replaced() {
      replacements++;
    },
  };
}

/** Adds one metric's series to `into` (counters and histograms: summed per label values). */
function addSeries(into: RegistrySnapshot, name: string, series: SeriesSnapshot[]): void {
  const mine = (into[name] ??= []);
  const labelsOf = (e: SeriesSnapshot) => e[0].join('\u0000');
  const byLabels = new Map(mine.map((e) => [labelsOf(e), e]));
  for (const entry of series) {
    const same = byLabels.get(labelsOf(entry));
    if (same === undefined) {
      const copy: SeriesSnapshot = entry.length === 2 ? [[...entry[0]], entry[1]] : [[...entry[0]], [...entry[1]], entry[2], entry[3]];
      mine.push(copy);
      byLabels.set(labelsOf(copy), copy);
    } else if (same.length === 2 && entry.length === 2) same[1] += entry[1];
    else if (same.length === 4 && entry.length === 4 && same[1].length === entry[1].length) {
      entry[1].forEach((n, i) => (same[1][i]! += n));
      same[2] += entry[2];
      same[3] += entry[3];
    }
  }
}
