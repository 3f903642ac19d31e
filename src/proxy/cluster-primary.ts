// The cluster primary of `proxy.workers: N`: forks the workers, relays the supervisor's messages to them and theirs
// back, replaces one that dies, and stops them all. It serves nothing itself.
import cluster, { type Worker } from 'node:cluster';
import { LlmserveError } from '../errors.js';
import type { Logger } from '../log.js';
import { ordinal } from '../util/ordinal.js';
import { mergeActivity, noActivity, type BackendActivity } from './backend-activity.js';
import { sendToParent } from './parent-channel.js';
import type { ChildMessage, KeyEntryDigest, ParentMessage, ProxySettings } from './settings.js';
import type { WorkerActivityMessage } from './worker-activity.js';
import { metricsCollector } from './worker-metrics.js';

/** What a cluster worker tells its primary for the primary to say once for every worker (runWorkers). */
export type WorkerLogMessage = { type: 'draining'; inflight: number; timeoutMs: number } | { type: 'keys-error' | 'store-warning'; message: string };

/** Worker exits the primary replaces within WORKER_EXIT_WINDOW_MS; the next one fails the proxy as a whole. */
const WORKER_REPLACEMENTS = 2;
const WORKER_EXIT_WINDOW_MS = 60_000;

/**
 * `proxy.workers: N`: forks N copies of this command (Node cluster; they share the listening socket, and the kernel
 * spreads connections among them), gives each the settings, reports `listening` once all are, relays `state`,
 * `reload-keys` and `drain` to every worker (summing their `drained`), and stops them on SIGTERM or when the
 * supervisor goes (a worker whose primary dies sees its channel close and stops too). A worker that dies on its own is
 * replaced while the others serve on (the port stays open: this process holds it), as nginx's master replaces a
 * worker; a third exit within a minute, or a replacement that does not start, fails the proxy as a whole, which the
 * supervisor then restarts.
 */
export async function runWorkers(settings: ProxySettings, stopped: Promise<void>, logger: Logger, stdout: { write(text: string): unknown }): Promise<void> {
  // The kernel hands connections to the workers: no accept in this process and no handle passed per connection.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const count = settings.workers ?? 1;
  const workers = new Set<Worker>();
  // The workers serving (they said `listening`): the ones messages, questions and the drain go to.
  const live = new Set<Worker>();
  // The worker that says what every worker would say alike (keys loaded, backend state); the others stay quiet.
  let speaker: Worker | null = null;
  let stopping = false;
  // SIGTERM reached the proxy (`stopping`, `drain`): a worker that exits now is not replaced.
  let winding = false;
  const exitTimes: number[] = [];
  // What a worker started later must be told: the supervisor's latest state per model ('' with one model), the
  // restart count, and the keys file's keys in force.
  const lastState = new Map<string, ParentMessage>();
  let restarts = settings.restarts;
  let fileKeys = settings.fileKeys;
  let tlsInForce = settings.tlsInForce;
  let drain: { waiting: Set<Worker>; remaining: number } | null = null;
  // The workers' requests in flight as the drain began, summed: said once, when every worker has told its own.
  let draining: { waiting: Set<Worker>; inflight: number; timeoutMs: unknown } | null = null;
  // The keys file errors said since the last reload: every worker reads the same file and finds the same error.
  const keysErrorsSaid = new Set<string>();
  // The usage store's warnings said: every worker opens the same store and finds the same fault (a replacement too).
  const storeWarningsSaid = new Set<string>();
  // The `activity` questions being answered, by a seq of the primary's own. Why several: each model's health loop asks
  // on its own, and loops started together time out together (a question dropped for a newer one left its model's check
  // counted as failed); and a worker's readiness asks too (worker-activity.ts).
  const activity = new Map<number, { pending: number; answer: BackendActivity; reply: (answer: BackendActivity) => void; timer: NodeJS.Timeout }>();
  let activitySeq = 0;
  const answerActivity = (seq: number) => {
    const question = activity.get(seq);
    if (question === undefined) return;
    activity.delete(seq);
    clearTimeout(question.timer);
    question.reply(question.answer);
  };
  const askActivity = (reply: (answer: BackendActivity) => void) => {
    // Only the workers it goes to: a question waiting on one that cannot answer would stay in the map for good.
    const asked = [...live].filter((w) => w.isConnected());
    if (asked.length === 0) return reply(noActivity());
    const seq = ++activitySeq;
    // A worker that cannot answer (stopped, dying) never does: after 1 s, what the others said.
    const timer = setTimeout(() => answerActivity(seq), 1000);
    timer.unref();
    activity.set(seq, { pending: asked.length, answer: noActivity(), reply, timer });
    for (const w of asked) w.send({ type: 'activity', seq });
  };
  let failed!: (err: Error) => void;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  failure.catch(() => {});
  // Answers a worker's /metrics with every worker's series (worker-metrics.ts).
  const collector = metricsCollector(() => live);
  // The last state message each worker has applied: the supervisor hears `state-applied` only when all have, since
  // the kernel may hand the next connection to any of them.
  const appliedBy = new Map<Worker, number>();
  let appliedSent = 0;
  const reportApplied = () => {
    let all = Infinity;
    for (const w of live) all = Math.min(all, appliedBy.get(w) ?? 0);
    if (all === Infinity || all <= appliedSent) return;
    appliedSent = all;
    void sendToParent({ type: 'state-applied', seq: all });
  };
  const finishDrain = () => {
    if (drain !== null && drain.waiting.size === 0) {
      void sendToParent({ type: 'drained', remaining: drain.remaining });
      drain = null;
    }
  };
  const finishDraining = () => {
    if (draining !== null && draining.waiting.size === 0) {
      const { inflight, timeoutMs } = draining;
      logger.info(`draining: ${inflight} requests in flight, waiting up to ${typeof timeoutMs === 'number' ? timeoutMs : '?'} ms`);
      draining = null;
    }
  };
  /** The settings a worker starts with: the supervisor's, brought up to date for a worker started later. */
  const settingsFor = (worker: Worker): ProxySettings => {
    const current: ProxySettings = { ...settings, quiet: worker !== speaker };
    if (restarts !== undefined) current.restarts = restarts;
    if (fileKeys !== undefined) current.fileKeys = fileKeys;
    if (tlsInForce !== undefined) current.tlsInForce = tlsInForce;
    for (const [model, m] of lastState) {
      if (m.type !== 'state') continue;
      if (model === '') current.state = m.state;
      else current.backendStates = { ...current.backendStates, [model]: m.state };
    }
    return current;
  };

  /** Forks one worker; resolves with its port once it listens, rejects if it fails or exits first. */
  const startWorker = (): Promise<number> => {
    const worker = cluster.fork();
    workers.add(worker);
    speaker ??= worker;
    return new Promise<number>((resolve, reject) => {
      worker.on('message', (msg: unknown) => {
        const m = msg as { type?: string; port?: number; code?: string; message?: string; remaining?: number; seq?: number } | null;
        if (m === null || typeof m !== 'object') return;
        if (collector.handle(worker, m)) return;
        if (m.type === 'log' && typeof (m as { text?: unknown }).text === 'string') stdout.write((m as { text: string }).text);
        else if (m.type === 'want-start') worker.send({ type: 'start', settings: settingsFor(worker) });
        else if (m.type === 'activity-gather' && typeof (m as { id?: unknown }).id === 'number') {
          const id = (m as { id: number }).id;
          askActivity(({ sinceMs }) => void (worker.isConnected() && worker.send({ type: 'activity-gathered', id, sinceMs } satisfies WorkerActivityMessage)));
        } else if (m.type === 'keys-loaded') {
          const fromFile = (m as { fromFile?: unknown }).fromFile;
          if (Array.isArray(fromFile)) fileKeys = fromFile as KeyEntryDigest[];
          void sendToParent(m as ChildMessage);
        } else if (m.type === 'tls-loaded') {
          const { cert, key } = m as { cert?: unknown; key?: unknown };
          if (typeof cert === 'string' && typeof key === 'string') {
            // Every worker reports the same reload: passed up once per change.
            if (tlsInForce?.cert !== cert || tlsInForce.key !== key) void sendToParent({ type: 'tls-loaded', cert, key });
            tlsInForce = { cert, key };
          }
        } else if (m.type === 'listening' && typeof m.port === 'number') {
          live.add(worker);
          // A state sent while it started may have come before it handled messages: the latest ones again, and the
          // stop's readiness change if SIGTERM came meanwhile.
          for (const state of lastState.values()) worker.send(state);
          if (winding) worker.send({ type: 'stopping' } satisfies ParentMessage);
          resolve(m.port);
        } else if (m.type === 'state-applied' && typeof m.seq === 'number') {
          appliedBy.set(worker, m.seq);
          reportApplied();
        } else if (m.type === 'fatal') reject(new LlmserveError(m.code === 'PORT_IN_USE' || m.code === 'TLS' ? m.code : 'RUNTIME', m.message ?? 'a proxy worker failed'));
        else if (m.type === 'activity' && typeof m.seq === 'number' && activity.has(m.seq)) {
          const question = activity.get(m.seq)!;
          // The most recent bytes any worker got from each backend (the backend served one of them), and the exchanges
          // waiting on it in all of them.
          mergeActivity(question.answer, m as { sinceMs?: unknown; waiting?: unknown });
          if (--question.pending === 0) answerActivity(m.seq);
        } else if (m.type === 'draining' && draining !== null && draining.waiting.delete(worker)) {
          draining.inflight += typeof (m as { inflight?: unknown }).inflight === 'number' ? (m as { inflight: number }).inflight : 0;
          draining.timeoutMs = (m as { timeoutMs?: unknown }).timeoutMs;
          finishDraining();
        } else if (m.type === 'keys-error' && typeof m.message === 'string') {
          if (!keysErrorsSaid.has(m.message)) logger.error(m.message);
          keysErrorsSaid.add(m.message);
        } else if (m.type === 'store-warning' && typeof m.message === 'string') {
          if (!storeWarningsSaid.has(m.message)) logger.warn(m.message);
          storeWarningsSaid.add(m.message);
        } else if (m.type === 'drained' && drain !== null && drain.waiting.delete(worker)) {
          drain.remaining += typeof m.remaining === 'number' ? m.remaining : 0;
          finishDrain();
        }
      });
      worker.once('exit', (code, signal) => {
        const wasLive = live.delete(worker);
        workers.delete(worker);
        appliedBy.delete(worker);
        // Its counters stay in /metrics (a sum that drops reads as a counter reset to Prometheus); its gauges go.
        collector.retire(worker);
        // Its requests in flight are gone with it: the drain does not wait for its answer.
        if (draining?.waiting.delete(worker) === true) finishDraining();
        if (drain?.waiting.delete(worker) === true) finishDrain();
        const how = `proxy worker ${worker.process.pid ?? '?'} exited (${signal ?? `code ${code}`})`;
        reject(new LlmserveError('RUNTIME', how));
        if (stopping) return;
        recordWorkerExit(exitTimes);
        // Not replaced: one that never served (a replacement that cannot start would fail again), one exiting during
        // the stop, one exit too many within the window (something kills them all, one by one).
        if (!wasLive || winding || exitTimes.length > WORKER_REPLACEMENTS) {
          const why = !wasLive ? ' before it served' : winding ? ' while stopping' : `, the ${ordinal(exitTimes.length)} within ${WORKER_EXIT_WINDOW_MS / 1000} s`;
          failed(new LlmserveError('RUNTIME', `${how}${why}`));
          return;
        }
        logger.warn(`${how}: starting another, ${othersServing(live.size)} (${exitTimes.length} of ${WORKER_REPLACEMENTS} replacements within ${WORKER_EXIT_WINDOW_MS / 1000} s)`);
        collector.replaced();
        if (speaker === worker) {
          // A worker that serves on takes the speaking over (its start-up lines were said already, once); only with
          // none left does the replacement speak, start-up lines included.
          speaker = [...live].find((w) => w.isConnected()) ?? null;
          speaker?.send({ type: 'speak' } satisfies ParentMessage);
        }
        // Its messages may now complete a wait on the workers left.
        reportApplied();
        startWorker().then(
          () => logger.info(`proxy worker ${worker.process.pid ?? '?'} replaced`),
          (err: Error) => failed(new LlmserveError('RUNTIME', `proxy worker ${worker.process.pid ?? '?'} could not be replaced: ${err.message}`)),
        );
      });
    });
  };
  const ready: Promise<number>[] = [];
  for (let i = 0; i < count; i++) ready.push(startWorker());
  const stopAll = async () => {
    stopping = true;
    const exits = [...workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) w.process.kill('SIGTERM');
    await Promise.all(exits);
  };
  let port: number;
  try {
    const ports = await Promise.race([Promise.all(ready), stopped.then(() => null)]);
    if (ports === null) return await stopAll();
    port = ports[0]!;
  } catch (err) {
    await stopAll();
    throw err;
  }
  logger.info(`${count} proxy workers listening on port ${port}`);
  const onMessage = (msg: unknown) => {
    const m = msg as Partial<ParentMessage> | null;
    if (m === null || typeof m !== 'object' || m.type === 'start') return;
    if (m.type === 'state') {
      lastState.set(typeof m.model === 'string' ? m.model : '', m as ParentMessage);
      if (typeof m.restarts === 'number') restarts = m.restarts;
    }
    if (m.type === 'stopping') winding = true;
    if (m.type === 'drain') {
      winding = true;
      if (live.size === 0) return void sendToParent({ type: 'drained', remaining: 0 });
      drain = { waiting: new Set(live), remaining: 0 };
      draining = { waiting: new Set(live), inflight: 0, timeoutMs: m.timeoutMs };
    }
    // What a reload finds is said again after the next one (keys and TLS errors share the channel).
    if (m.type === 'reload-keys' || m.type === 'reload-tls') keysErrorsSaid.clear();
    if (m.type === 'activity') {
      const seq = m.seq;
      if (typeof seq === 'number') askActivity((answer) => void sendToParent({ type: 'activity', seq, ...answer }));
      return;
    }
    for (const w of live) if (w.isConnected()) w.send(m);
  };
  process.on('message', onMessage);
  try {
    await sendToParent({ type: 'listening', port });
    await Promise.race([stopped, failure]);
  } finally {
    process.off('message', onMessage);
    await stopAll();
  }
}

/**
 * Who serves while a crashed worker is replaced: none when the one that served died while its sibling (itself a
 * replacement) was still starting.
 */
export function othersServing(live: number): string {
  if (live === 0) return 'no other worker serves until it listens';
  return live === 1 ? 'the other worker serves meanwhile' : `the other ${live} workers serve meanwhile`;
}

/**
 * Records a worker exit in `exitTimes` and returns how many fell within the last WORKER_EXIT_WINDOW_MS, on the
 * monotonic clock: a wall clock stepped back (NTP, a resumed VM) would count exits of long ago as within the window.
 */
export function recordWorkerExit(exitTimes: number[], now: number = performance.now()): number {
  while (exitTimes.length > 0 && now - exitTimes[0]! > WORKER_EXIT_WINDOW_MS) exitTimes.shift();
  exitTimes.push(now);
  return exitTimes.length;
}
