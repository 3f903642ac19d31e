// Readiness with `proxy.workers` > 1: whether a backend whose /health is late still sends responses is a question for
// every worker, not only the one the kernel gave the probe's connection to (which may carry none of the traffic). The
// worker asks the cluster primary, which asks every worker (the supervisor's `activity` question) and answers.

/** The messages between a worker and the primary. */
export type WorkerActivityMessage =
  | { type: 'activity-gather'; id: number }
  | { type: 'activity-gathered'; id: number; sinceMs: Record<string, number | null> };

/** A worker's side: `ask` for readiness, `handle` for the primary's answers. */
export interface ActivityGatherer {
  /** Ms since the backend at `url` last sent bytes to any worker; this worker's own figure if the primary is late. */
  ask(url: string): Promise<number | null>;
  /** Handles one message from the primary; false when it is not one of these. */
  handle(msg: { type?: unknown }): boolean;
}

/** The worker's side; `own` is this worker's figure per backend URL (the fallback when the primary does not answer). */
export function activityGatherer(send: (m: WorkerActivityMessage) => void, own: () => Record<string, number | null>, timeoutMs = 500): ActivityGatherer {
  let next = 0;
  const pending = new Map<number, (sinceMs: Record<string, number | null>) => void>();
  return {
    ask(url) {
      return new Promise((resolve) => {
        const id = ++next;
        const settle = (sinceMs: Record<string, number | null>) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(sinceMs[url] ?? own()[url] ?? null);
        };
        const timer = setTimeout(() => settle(own()), timeoutMs);
        pending.set(id, settle);
        send({ type: 'activity-gather', id });
      });
    },
    handle(msg) {
      const m = msg as WorkerActivityMessage;
      if (m.type !== 'activity-gathered') return false;
      if (m.sinceMs !== null && typeof m.sinceMs === 'object') pending.get(m.id)?.(m.sinceMs);
      return true;
    },
  };
}
