// The proxy child as the supervisor talks to it over IPC: its start, the backend states it has put in force, its
// answers about vLLM's traffic, and its drain. The supervisor decides when; this module knows the messages.
import { LlmserveError } from '../errors.js';
import { mergeActivity, noActivity, type BackendActivity } from '../proxy/backend-activity.js';
import type { TlsInForce } from '../proxy/settings.js';
import { formatSeconds, raceAbort, sleep } from '../util/time.js';
import type { BackendActivityOf } from './backend.js';
import { exitSignalOf, type ManagedChild } from './child.js';
import { emptyGroup } from './stop.js';
import type { SupervisorDeps, SupervisorPlan } from './types.js';

/**
 * How long a change to ready or healthy waits for every proxy worker to confirm the state before the probe files
 * follow anyway. Why 5 s: a worker of a proxy just started on a busy machine confirmed after 2 s once (the service
 * was then said ready while that worker still answered 503 "starting"); a hung proxy is the health check's business.
 */
const STATE_APPLIED_TIMEOUT_MS = 5000;
/** How long a question about vLLM's traffic waits for the proxy's answer. */
const ACTIVITY_TIMEOUT_MS = 1000;

/** A backend's state as the proxy sees it. */
export type ProxyBackendState = 'starting' | 'ready' | 'restarting' | 'failed';

/** What a proxy is started with besides the plan's settings: the backends' states now. */
export interface ProxyStartState {
  state: ProxyBackendState;
  restarts: number;
  /** Each model's state, with several models. */
  backendStates?: Record<string, ProxyBackendState>;
}

/** One backend's state for the proxy (`model` only with several models, as one model's messages never carried it). */
export interface ProxyStateMessage {
  state: ProxyBackendState;
  model?: string;
  restarts: number;
}

/** The current proxy process and the IPC exchanges with it; a restart replaces the child, the link stays. */
export class ProxyLink {
  private current: ManagedChild | null = null;
  /** The current proxy said `listening`: only then does it handle IPC messages such as `drain`. */
  private listening = false;
  /** The last `state` message sent to the proxy, and the last one it said is in force (in every worker). */
  private stateSeq = 0;
  private appliedSeq = 0;
  private readonly appliedWaiters = new Set<() => void>();
  /**
   * proxy.keys_file's keys as the last proxy put them in force (null: as at config load, in the plan's settings):
   * a proxy restarted while the file is broken serves these, not none of the file's keys.
   */
  private fileKeys: unknown[] | null = null;
  /** The TLS certificate and key the proxy last served (PEM): a restarted proxy falls back to them (proxy/tls.ts). */
  private tlsInForce: TlsInForce | null = null;
  /** `activity` questions to the proxy waiting for their answer, by seq. */
  private readonly activityWaiters = new Map<number, (activity: BackendActivity) => void>();
  private activitySeq = 0;

  constructor(
    private readonly plan: SupervisorPlan['proxy'],
    private readonly deps: Pick<SupervisorDeps, 'spawn' | 'logger' | 'describePortHolder'>,
    private readonly stopSignal: AbortSignal,
  ) {}

  /** The current proxy (null before the first start); a restart replaces it. */
  get child(): ManagedChild | null {
    return this.current;
  }

  /**
   * Spawns a proxy and sends it its settings with the backends' states as `startState()` gives them; resolves once it
   * listens (or on stop). A change sent while it started is sent again through `resendStates`. A proxy that fails
   * to listen is killed and thrown as an LlmserveError (its port in use, bad TLS files, or exit 3).
   */
  async start(startState: () => ProxyStartState, resendStates: () => void): Promise<void> {
    const { logger } = this.deps;
    const proxy = await this.deps.spawn({
      file: this.plan.file,
      args: this.plan.args,
      env: this.plan.env,
      ipc: true,
      onLine: (line, stream, whole) => logger.passthrough('proxy', line, stream, whole),
    });
    this.current = proxy;
    this.listening = false;
    // Its exit wakes whoever waits for it to confirm a state (stateApplied).
    void proxy.exited.then(() => {
      for (const wake of this.appliedWaiters) wake();
    });
    const listening = new Promise<{ type: string; code?: string; message?: string; port?: number }>((resolve) => {
      proxy.onMessage((m) => {
        const msg = m as { type?: string; seq?: unknown };
        if (msg.type === 'listening' || msg.type === 'fatal') resolve(msg as { type: string });
        else if (msg.type === 'state-applied' && typeof msg.seq === 'number' && this.child === proxy) this.stateInForce(msg.seq);
        else if (msg.type === 'keys-loaded' && isKeyDigestList((msg as { fromFile?: unknown }).fromFile)) this.fileKeys = (msg as { fromFile: unknown[] }).fromFile;
        else if (msg.type === 'tls-loaded') {
          const { cert, key } = msg as { cert?: unknown; key?: unknown };
          if (typeof cert === 'string' && typeof key === 'string') this.tlsInForce = { cert, key };
        }
        else if (msg.type === 'activity' && typeof msg.seq === 'number') {
          const activity = noActivity();
          mergeActivity(activity, msg as { sinceMs?: unknown; waiting?: unknown });
          this.activityWaiters.get(msg.seq)?.(activity);
        }
      });
    });
    // Settings and keys travel over IPC, never on argv where `ps` would show them. A restarted proxy learns each
    // backend's state here.
    const { state, restarts, backendStates } = startState();
    const seqAtStart = this.stateSeq;
    const fileKeys = this.fileKeys === null ? {} : { fileKeys: this.fileKeys };
    const tlsInForce = this.tlsInForce === null ? {} : { tlsInForce: this.tlsInForce };
    proxy.send({ type: 'start', settings: { ...(this.plan.settings as object), ...fileKeys, ...tlsInForce, state, restarts, ...(backendStates ? { backendStates } : {}) } });
    const raced = await raceAbort(listening, { exited: exitSignalOf(proxy), stopped: this.stopSignal });
    if (raced === 'stopped') return;
    const outcome = raced === 'exited' ? null : raced;
    if (outcome !== null && outcome.type === 'listening') {
      // Its start message carried every backend's state as it was then. A change sent while it started (a restarted
      // proxy, vLLM changing meanwhile) may have arrived before it handled messages: send the current ones again.
      this.stateInForce(seqAtStart);
      if (this.stateSeq > seqAtStart) resendStates();
    }
    if (outcome === null || outcome.type === 'fatal') {
      let message = outcome?.message ?? 'the proxy exited before it was listening';
      if (outcome?.code === 'PORT_IN_USE') {
        const holder = this.deps.describePortHolder?.(this.plan.port);
        if (holder) message += ` by ${holder}`;
      }
      const code = outcome?.code === 'PORT_IN_USE' || outcome?.code === 'TLS' ? outcome.code : 'RUNTIME';
      await emptyGroup(proxy);
      throw new LlmserveError(code, message, code === 'RUNTIME' ? { exitCode: 3 } : {});
    }
    this.listening = true;
  }

  /** Sends one backend's state (every state message gets the next sequence number, confirmed by `state-applied`). */
  sendState(message: ProxyStateMessage): void {
    const seq = ++this.stateSeq;
    const { state, model, restarts } = message;
    if (model !== undefined) this.child?.send({ type: 'state', state, model, seq, restarts });
    else this.child?.send({ type: 'state', state, seq, restarts });
  }

  /** The proxy says every state message up to `seq` is in force. */
  private stateInForce(seq: number): void {
    if (seq <= this.appliedSeq) return;
    this.appliedSeq = seq;
    for (const wake of this.appliedWaiters) wake();
  }

  /**
   * Resolves once the proxy (every worker) has applied every state sent so far, or after 5 s (a proxy that does not
   * answer is caught by the proxy health check), or on stop.
   */
  stateApplied(): Promise<void> {
    const seq = this.stateSeq;
    if (this.appliedSeq >= seq || this.child === null || this.stopSignal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        this.appliedWaiters.delete(onApplied);
        this.stopSignal.removeEventListener('abort', finish);
        resolve();
      };
      // A dead proxy confirms nothing: no 5 s wait for it (its restart sends the state again).
      const proxy = this.child!;
      const onApplied = () => {
        if (this.appliedSeq >= seq || proxy.hasExited) finish();
      };
      timer = setTimeout(() => {
        this.deps.logger.warn(`the proxy did not confirm the backend state within ${formatSeconds(STATE_APPLIED_TIMEOUT_MS / 1000)}: going on (a worker may answer with the old state for a moment)`);
        finish();
      }, STATE_APPLIED_TIMEOUT_MS);
      this.appliedWaiters.add(onApplied);
      this.stopSignal.addEventListener('abort', finish, { once: true });
    });
  }

  /**
   * What the proxy (every worker) knows of the vLLM at `url`: ms since it last sent response bytes (null: never) and
   * the exchanges waiting on it; null when not known (no proxy listening, or no answer within a second).
   */
  async activityOf(url: string): Promise<BackendActivityOf | null> {
    const proxy = this.child;
    if (proxy === null || !this.listening || proxy.hasExited) return null;
    const seq = ++this.activitySeq;
    const giveUp = new AbortController();
    const answer = new Promise<BackendActivity | null>((resolve) => this.activityWaiters.set(seq, resolve));
    proxy.send({ type: 'activity', seq });
    const activity = await Promise.race([answer, sleep(ACTIVITY_TIMEOUT_MS, giveUp.signal).then(() => null)]);
    giveUp.abort();
    this.activityWaiters.delete(seq);
    if (activity === null) return null;
    const ms = activity.sinceMs[url];
    return { sinceMs: typeof ms === 'number' && ms >= 0 ? ms : null, waiting: activity.waiting[url] ?? { count: 0, heardMs: null } };
  }

  /** Whether the current proxy listens and is alive: only such a one handles `stopping` and `drain`. */
  get serving(): boolean {
    return this.child !== null && this.listening && !this.child.hasExited;
  }

  /** Readiness fails from now on (the proxy's /health/readiness answers 503), like `not-ready`. */
  sayStopping(): void {
    if (this.serving) this.child!.send({ type: 'stopping' });
  }

  /**
   * Asks the proxy to drain for up to `timeoutMs` and resolves with the requests still in flight then (0 when it
   * exited meanwhile, said through `onExitDuringDrain`, or when it did not answer within a second more, or on kill).
   */
  async drain(timeoutMs: number, killSignal: AbortSignal, onExitDuringDrain: (exit: { code: number | null; signal: NodeJS.Signals | null }) => void): Promise<number> {
    const proxy = this.child!;
    const drained = new Promise<number>((resolve) =>
      proxy.onMessage((m) => {
        const msg = m as { type?: string; remaining?: unknown };
        if (msg.type === 'drained') resolve(typeof msg.remaining === 'number' ? msg.remaining : 0);
      }),
    );
    proxy.send({ type: 'drain', timeoutMs });
    const diedDuringDrain = proxy.exited.then((exit) => {
      onExitDuringDrain(exit);
      return 0;
    });
    return Promise.race([drained, diedDuringDrain, sleep(timeoutMs + 1000, killSignal).then(() => 0)]);
  }
}

/** A `keys-loaded` list as the proxy sends it: names with SHA-256 digests (never key values). */
function isKeyDigestList(value: unknown): value is unknown[] {
  return (
    Array.isArray(value) &&
    value.every((e) => typeof e === 'object' && e !== null && typeof (e as { name?: unknown }).name === 'string' && /^[0-9a-f]{64}$/i.test(String((e as { sha256Hex?: unknown }).sha256Hex)))
  );
}
