// The proxy process's channel to its parent: the supervisor, or for a cluster worker the cluster primary.
import type { WorkerLogMessage } from './cluster-primary.js';
import type { ChildMessage } from './settings.js';
import type { WorkerActivityMessage } from './worker-activity.js';
import type { WorkerMetricsMessage } from './worker-metrics.js';

/** Sends a message to the parent and waits until it is written (a no-op once disconnected). */
export function sendToParent(msg: ChildMessage | WorkerMetricsMessage | WorkerActivityMessage | WorkerLogMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || process.send === undefined) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}
