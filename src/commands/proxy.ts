// `llmserve proxy`: the internal subcommand the supervisor spawns; settings arrive over IPC, never on argv.
import cluster from 'node:cluster';
import { ExitCode, LlmserveError, usageError } from '../errors.js';
import { createLogger } from '../log.js';
import { batchedOutput } from '../proxy/batched-output.js';
import { runWorkers } from '../proxy/cluster-primary.js';
import { sendToParent } from '../proxy/parent-channel.js';
import { onEmergency } from '../util/emergency.js';
import type { ProxyHandle } from '../proxy/server.js';
import { isBackendState, type KeyEntryDigest, type ParentMessage, type ProxySettings, type TlsInForce } from '../proxy/settings.js';
import { activityGatherer, type ActivityGatherer } from '../proxy/worker-activity.js';
import { metricsGatherer, type MetricsGatherer } from '../proxy/worker-metrics.js';

/**
 * Runs the proxy child: waits for `start`, serves until the IPC channel closes or SIGTERM, then resolves (exit 0).
 * When it cannot listen it sends `fatal` and rejects with an error whose exitCode is 2.
 */
export async function runProxyCommand(): Promise<void> {
  if (typeof process.send !== 'function') {
    throw usageError('`llmserve proxy` is internal: `llmserve start` runs it with an IPC channel');
  }
  // Signals are handled from the first instant: the parent may signal right after `listening`.
  const stop = stopSignal();
  // One write per batch of access-log lines instead of one per request (a pipe write is a syscall each). A cluster
  // worker hands its batches to the primary, the one writer of the shared stdout pipe: two processes writing
  // batches over 4 KiB (PIPE_BUF) to one pipe can interleave inside a line, which tore JSON lines under load.
  const output = batchedOutput(cluster.isWorker ? primaryStdout : process.stdout, process.stderr);
  // A crash (main.ts's uncaught-error exit) still writes the last batch of lines: straight to stdout, since an IPC
  // message sent just before process.exit may never leave.
  const offEmergency = onEmergency(() => {
    relayToPrimary = false;
    output.flush();
  });
  try {
    let proxy!: ProxyHandle;
    let gatherer: MetricsGatherer | null = null;
    let activity: ActivityGatherer | null = null;
    try {
      const settings = await Promise.race([waitForStart(), stop.promise.then(() => null)]);
      if (settings === null) return; // stopped or orphaned before the start message
      const logger = createLogger({ source: 'proxy', format: settings.logFormat, color: settings.color, stdout: output.stdout, stderr: output.stderr });
      if ((settings.workers ?? 1) > 1 && cluster.isPrimary) {
        // `proxy.workers`: this process only starts the workers and relays the supervisor's messages to them.
        await runWorkers(settings, stop.promise, logger, output.stdout);
        return;
      }
      // A worker's /metrics shows every worker: it gathers their snapshots through the primary.
      gatherer = cluster.isWorker ? metricsGatherer((m) => void sendToParent(m), () => proxy.metricsSnapshot(), () => proxy.metricsUnsummed()) : null;
      // Its readiness judges a late backend by every worker's traffic, through the primary, as the supervisor does.
      activity = cluster.isWorker ? activityGatherer((m) => void sendToParent(m), () => proxy.backendActivity().sinceMs) : null;
      // Workers other than the primary's speaker leave the lines every worker would repeat (listening, backend state) to it.
      const quiet = cluster.isWorker && settings.quiet === true;
      // Loaded here, not at the top: a cluster primary (above) serves nothing, and the server's modules (node:http,
      // the config parser...) cost it 10-30 MB of RSS per Node major, a share of the 5,000-stream memory budget.
      const { createProxy } = await import('../proxy/server.js');
      // The keys file's keys in force go to the supervisor, which gives them to a proxy restarted while the file is broken.
      const onKeysLoaded = (fromFile: readonly KeyEntryDigest[]) => void sendToParent({ type: 'keys-loaded', fromFile: [...fromFile] });
      // So does the TLS material served, for a proxy restarted (or a worker replaced) while the files are bad.
      const onTlsLoaded = (material: TlsInForce) => void sendToParent({ type: 'tls-loaded', ...material });
      // A cluster worker's drain count, keys file errors and usage store warnings go to the primary, which says them once for all workers.
      const toPrimary = cluster.isWorker
        ? {
            onDraining: (inflight: number, timeoutMs: number) => void sendToParent({ type: 'draining', inflight, timeoutMs }),
            onKeysError: (message: string) => void sendToParent({ type: 'keys-error', message }),
            onStoreWarning: (message: string) => void sendToParent({ type: 'store-warning', message }),
          }
        : {};
      proxy = await createProxy(settings, { logger, quiet, onKeysLoaded, onTlsLoaded, ...toPrimary, ...(gatherer === null ? {} : { gatherMetrics: gatherer.gather }), ...(activity === null ? {} : { heardFrom: activity.ask }) });
    } catch (err) {
      const code = err instanceof LlmserveError ? err.code : 'RUNTIME';
      const message = (err as Error).message;
      await sendToParent({ type: 'fatal', code, message });
      // The contract says exit 2 whatever the cause; main.ts exits with this error's code.
      throw new LlmserveError(code, message, { exitCode: ExitCode.usage, cause: err });
    }
    const onMessage = (msg: unknown) => handleMessage(proxy, msg, gatherer, activity);
    process.on('message', onMessage);
    await sendToParent({ type: 'listening', port: proxy.port });
    await stop.promise;
    process.off('message', onMessage);
    await proxy.close();
  } finally {
    output.flush();
    offEmergency();
    stop.dispose();
    if (process.connected) process.disconnect();
  }
}

/** Applies one message from the supervisor (or, in a worker, from the cluster primary). */
function handleMessage(proxy: ProxyHandle, msg: unknown, gatherer: MetricsGatherer | null, activity: ActivityGatherer | null): void {
  const m = msg as Partial<ParentMessage> | null;
  if (m === null || typeof m !== 'object') return;
  if (gatherer !== null && gatherer.handle(m)) return;
  if (activity !== null && activity.handle(m)) return;
  if (m.type === 'state' && isBackendState(m.state)) {
    proxy.setState(m.state, typeof m.model === 'string' ? m.model : undefined);
    if (typeof m.restarts === 'number') proxy.setRestarts(m.restarts);
    // In force from the next request on: say so (to the supervisor, or to the cluster primary, which waits for all).
    if (typeof m.seq === 'number') void sendToParent({ type: 'state-applied', seq: m.seq });
  } else if (m.type === 'reload-keys') proxy.reloadKeys().catch(() => {}); // the failure is logged; old keys stay
  else if (m.type === 'reload-tls') void proxy.reloadTls(); // the failure is logged; the certificate in use stays
  else if (m.type === 'stopping') proxy.markStopping();
  else if (m.type === 'speak') proxy.speak();
  else if (m.type === 'activity' && typeof m.seq === 'number') void sendToParent({ type: 'activity', seq: m.seq, ...proxy.backendActivity() });
  else if (m.type === 'drain') {
    const timeoutMs = typeof m.timeoutMs === 'number' && m.timeoutMs >= 0 ? m.timeoutMs : 30_000;
    void proxy.drain(timeoutMs).then((remaining) => sendToParent({ type: 'drained', remaining }));
  }
}

/** Resolves on SIGTERM or when the IPC channel closes (the parent is gone); SIGINT and SIGHUP are ignored meanwhile. */
function stopSignal(): { promise: Promise<void>; dispose(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  // Ignored: the supervisor decides the stopping order (a terminal's Ctrl-C reaches only its group anyway). SIGHUP
  // too: keys and certificates are reloaded on the supervisor's word (IPC), and a SIGHUP sent to every llmserve
  // process (`pkill -HUP -f llmserve`, a closed terminal) would otherwise end the proxy and cut its connections.
  const onSigint = () => {};
  process.on('SIGINT', onSigint);
  process.on('SIGHUP', onSigint);
  process.on('SIGTERM', resolve);
  process.on('disconnect', resolve);
  if (!process.connected) resolve();
  return {
    promise,
    dispose() {
      process.off('SIGINT', onSigint);
      process.off('SIGHUP', onSigint);
      process.off('SIGTERM', resolve);
      process.off('disconnect', resolve);
    },
  };
}

/** The settings from the first `start` message (the channel closing is handled by stopSignal). */
function waitForStart(): Promise<ProxySettings> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: unknown) => {
      const m = msg as Partial<ParentMessage> | null;
      if (m === null || typeof m !== 'object' || m.type !== 'start') return;
      process.off('message', onMessage);
      const s = m.settings;
      if (s === undefined || s === null || typeof s !== 'object' || typeof s.port !== 'number' || typeof s.backendUrl !== 'string') {
        reject(new LlmserveError('USAGE', 'the start message carries no valid proxy settings'));
        return;
      }
      resolve(s);
    };
    process.on('message', onMessage);
    // A cluster worker's channel is read from its first instant (the cluster's own messages), so a `start` sent
    // before this listener existed would be lost: the worker asks for it once it listens.
    if (cluster.isWorker) process.send?.({ type: 'want-start' });
  });
}

/** False once the process is dying: its last lines are written directly. */
let relayToPrimary = true;

/** A worker's stdout: each batch of whole lines goes to the cluster primary, which writes it (see runProxyCommand). */
const primaryStdout = {
  write(text: string): boolean {
    if (relayToPrimary && typeof process.send === 'function' && process.connected) process.send({ type: 'log', text });
    else process.stdout.write(text);
    return true;
  },
};
