// Readiness with `proxy.workers` > 1: whether a backend whose /health is late still sends responses is a question for
// every worker, not only the one the kernel gave the probe's connection to (which may carry none of the traffic). The
// worker asks the cluster primary, which asks every worker (the supervisor's `activity` question) and answers.
import { primaryAsker } from './ask-primary.js';

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
  const asker = primaryAsker<Record<string, number | null>>((id) => send({ type: 'activity-gather', id }), timeoutMs);
  return {
    async ask(url) {
      const sinceMs = await asker.ask(own);
      return sinceMs[url] ?? own()[url] ?? null;
    },
    handle(msg) {
      const m = msg as WorkerActivityMessage;
      if (m.type !== 'activity-gathered') return false;
      if (m.sinceMs !== null && typeof m.sinceMs === 'object') asker.answer(m.id, m.sinceMs);
      return true;
    },
  };
}
