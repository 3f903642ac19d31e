// One backend: a vLLM child with its own restart policy and health state. The supervisor runs one per model.
import { LlmserveError } from '../errors.js';
import { diagnose, rejectedRemovedFlags, withoutFlags } from '../engine/diagnose.js';
import { BACKEND_HOST, DISABLE_ACCESS_LOG_FLAG } from '../engine/command.js';
import { vllmLineLevel } from '../engine/line-level.js';
import { withoutColourCodes } from '../util/ansi.js';
import { ordinal } from '../util/ordinal.js';
import { LineRing } from '../util/ring.js';
import { formatSeconds, raceAbort, sleep } from '../util/time.js';
import { exitSignalOf, groupMembersBelow, liveGroupMembers, type ManagedChild } from './child.js';
import { RestartPolicy } from './restart-policy.js';
import { SHUTDOWN_TIMEOUT_FLAG } from './shutdown-timeout.js';
import { spawnFailure, VLLM_INSTALL_FIX } from './spawn-failure.js';
import { EngineStallWatch, engineFigures } from './engine-stall.js';
import type { WaitingOn } from '../proxy/upstream/client.js';
import { emptyGroup, stopChild, type StopOutcome } from './stop.js';
import type { BackendPlan, SupervisorDeps, SupervisorPlan } from './types.js';

const READY_POLL_MS = 100;
/** Every how many health ticks vLLM's process group is sampled by a scan of every process (else by a walk down). */
const FULL_SCAN_EVERY = 10;
/** How long a stop waits for a GPU-memory query it SIGKILLed to be gone. */
const QUERY_GONE_MS = 1000;
/** vLLM lines printed after a failed start. */
const LAST_LINES = 50;
/** vLLM lines searched for a diagnosis: the root cause often precedes pages of worker shutdown noise. */
const DIAGNOSIS_LINES = 500;
/** The most of vLLM's /metrics page the engine-stall watchdog reads (a page cut short loses only its last line). */
const METRICS_PAGE_BYTES = 4 * 1024 * 1024;
/** Consecutive failed backend health checks (port open, no answer) before vLLM counts as failed and restarts. */
export const HUNG_CHECKS_BEFORE_RESTART = 3;

/** How a backend's start ended: serving, failed for good, or stopped by a signal. */
export type StartResult = 'ready' | 'failed' | 'stopped';
/**
 * `starting` until first ready; `restarting` after a failure until it is ready again; `failed` once its restart
 * budget ran out (for good: its processes are gone and it is never started again).
 */
export type BackendStatus = 'starting' | 'ready' | 'restarting' | 'failed';

/**
 * What the proxy (every worker) knows of one vLLM: ms since it last sent response bytes (null: never), and the exchanges
 * waiting on it alone with ms since any of them last got bytes (null: none has).
 */
export interface BackendActivityOf {
  sinceMs: number | null;
  waiting: WaitingOn;
}

/** What a backend shares with its supervisor: side effects, timings, and the stop and kill signals. */
export interface BackendContext {
  deps: SupervisorDeps;
  plan: SupervisorPlan;
  stopSignal: AbortSignal;
  killSignal: AbortSignal;
  /** Called on every status or health change, so the supervisor can update the proxy and the probe files. */
  changed: (backend: Backend, why: string) => void;
  /** Called each time vLLM is started again after a failure (the proxy counts restarts). */
  restarting: (backend: Backend) => void;
  /** What the proxy knows of the vLLM at this URL; null when not known (no proxy, no answer). */
  activityOf?: (url: string) => Promise<BackendActivityOf | null>;
  /** Seconds of the start-up timeout already spent before vLLM's first start (a head's wait for its Ray nodes). */
  spentBeforeFirstStart?: () => number;
}

/** One vLLM and everything about its life: start, readiness, health checks, restart with backoff, stop. */
export class Backend {
  status: BackendStatus = 'starting';
  /** The last health verdict (false while starting or restarting). */
  healthy = false;
  child: ManagedChild | null = null;
  /** `vLLM` with one model, `vLLM "name"` with several: the subject of every log line about it. */
  readonly label: string;
  private argv: string[];
  private readonly lines = new LineRing(DIAGNOSIS_LINES);
  private lastOutputAt = 0;
  /** Health ticks so far (every FULL_SCAN_EVERY-th samples the process group by a full scan). */
  private ticks = 0;
  /**
   * Every pid seen in the current vLLM's process group (sampled when it is ready and at each health check). Why:
   * a process that already died (an EngineCore killed by the OOM killer) may still be listed by nvidia-smi while
   * the driver frees its memory, and by then it can no longer be found in the group.
   */
  private pids = new Set<number>();
  private failedChecks = 0;
  /** /health is timing out while vLLM keeps sending responses: said once per episode. */
  private busy = false;
  /** The engine-stall watchdog; null when `engine_stall_timeout` is 0. */
  private readonly stall: EngineStallWatch | null;
  /** This vLLM's /metrics was found without token counters: said once per vLLM. */
  private stallBlindSaid = false;
  /** How many times vLLM was started again after a failure. */
  restarts = 0;
  readonly policy: RestartPolicy;

  constructor(
    readonly spec: BackendPlan,
    private readonly ctx: BackendContext,
    several: boolean,
  ) {
    this.argv = [...spec.argv];
    this.policy = new RestartPolicy(ctx.plan.restart);
    this.stall = ctx.plan.engineStallTimeout > 0 ? new EngineStallWatch(ctx.plan.engineStallTimeout * 1000) : null;
    this.label = several ? `vLLM "${spec.servedModelName}"` : 'vLLM';
  }

  private get stopping(): boolean {
    return this.ctx.stopSignal.aborted;
  }

  /** Starts vLLM and waits until /v1/models answers. A first start that fails throws (exit 3). */
  async start(first: boolean): Promise<StartResult> {
    const { logger } = this.ctx.deps;
    const { plan } = this.ctx;
    for (;;) {
      // A retry (a flag dropped) after the stop began must not start a vLLM that nothing would stop.
      if (this.stopping) return 'stopped';
      const port = this.spec.port;
      if (!(await this.waitPortFree(port, first ? 0 : 10_000))) {
        if (this.stopping) return 'stopped';
        const holder = this.ctx.deps.describePortHolder?.(port);
        const error = new LlmserveError(
          'PORT_IN_USE',
          `backend port ${BACKEND_HOST}:${port} is already in use${holder ? ` by ${holder}` : ''}; stop it, or choose another port with --backend-port N (vllm.port)`,
        );
        if (first) throw error;
        logger.error(error.message);
        return 'failed';
      }
      this.lines.clear();
      this.lastOutputAt = this.ctx.deps.now();
      const [file, ...args] = this.argv as [string, ...string[]];
      const started = this.ctx.deps.now();
      const progress = this.ctx.deps.startProgress?.(this.label);
      const child = await this.ctx.deps
        .spawn({
          file,
          args,
          env: this.spec.env,
          onLine: (raw, stream) => {
            // vLLM colours its level names when VLLM_LOGGING_COLOR=1 (a wrapper may set it even when piped): the codes
            // would hide each line's level (an ERROR logged as info) and reach the log file, the JSON log and diagnosis.
            const line = withoutColourCodes(raw);
            this.lines.push(line);
            this.lastOutputAt = this.ctx.deps.now();
            // Behind a terminal status line vLLM's raw lines are hidden (they still reach --log-file).
            const level = vllmLineLevel(line, stream);
            if (progress === undefined || progress.showsRawLines()) logger.child(this.spec.logName, line, stream, level);
            else logger.fileOnly(this.spec.logName, line, level);
            progress?.line(line);
          },
        })
        .catch((err: NodeJS.ErrnoException) => {
          throw spawnFailure(file, err, VLLM_INSTALL_FIX);
        });
      this.child = child;
      if (this.stopping) {
        // The stop came while the spawn was under way: the stop may already have passed this backend by.
        progress?.stop();
        await emptyGroup(child);
        return 'stopped';
      }
      logger.info(`${this.label} started (pid ${child.pid}, own process group); waiting for http://${BACKEND_HOST}:${port}/v1/models`);
      const outcome = await this.waitReady(child, first).finally(() => progress?.stop());
      if (outcome === 'ready') {
        this.pids = new Set(liveGroupMembers(child.pid));
        logger.info(`${this.label} is ready after ${formatSeconds((this.ctx.deps.now() - started) / 1000)}`);
        return 'ready';
      }
      if (outcome === 'stopped') return 'stopped';
      if (typeof outcome === 'object') {
        // Not (only) our vLLM's answer: kill ours, whose port another server shares, and say so; or vLLM asks for a
        // key of its own.
        await emptyGroup(child);
        const error = 'auth' in outcome ? this.ownAuth() : this.sharedPort(port, outcome.why);
        if (first) throw error;
        logger.error(error.message);
        return 'failed';
      }
      // The last lines (the traceback) may still be in the pipe when the exit is seen, and orphaned workers keep
      // the pipe open: kill the group first, then read to the end (data already written survives the SIGKILL).
      await emptyGroup(child);
      await Promise.race([child.outputClosed, sleep(2000)]);
      const lines = this.lines.toArray();
      if (outcome === 'exited') {
        const removed = rejectedRemovedFlags(lines, this.spec.droppableFlags);
        if (removed.length > 0 && this.argv.some((a) => removed.includes(a.split('=')[0]!.replace(/_/g, '-')))) {
          // Old scripts pass flags vLLM has since deleted whose intent is now the default, and vLLM before March
          // 2026 lacks the --shutdown-timeout llmserve adds: drop them, retry at once, and keep them dropped for
          // every restart (argv is the backend's, not the plan's).
          for (const flag of removed) logger.warn(droppedFlagWarning(flag));
          this.argv = withoutFlags(this.argv, removed);
          continue;
        }
      }
      const exit = child.hasExited ? await child.exited : null;
      const what =
        outcome === 'exited'
          ? `${this.label} exited during start-up (${exit?.signal ? `signal ${exit.signal}` : `exit code ${exit?.code}`})`
          : outcome === 'timeout'
            ? `${this.label} was not ready within the start-up timeout (${formatSeconds(plan.startupTimeout)}${first && (this.ctx.spentBeforeFirstStart?.() ?? 0) > 0 ? `, of which the wait for the Ray nodes took ${formatSeconds(this.ctx.spentBeforeFirstStart!())}` : ''})`
            : `${this.label} printed nothing for ${formatSeconds(plan.stallTimeout)} while starting (stall timeout)`;
      const diagnosis = diagnose(lines);
      const last = lines.slice(-LAST_LINES);
      const details = [
        last.length === 0 ? 'vLLM printed nothing' : `last ${last.length} lines of vLLM:`,
        ...last.map((l) => `  ${l}`),
        ...(diagnosis ? [`diagnosis: ${diagnosis}`] : outcome === 'exited' ? [] : [timeoutFix(outcome, plan.startupTimeout, plan.stallTimeout)]),
      ];
      if (first) throw new LlmserveError(outcome === 'exited' ? 'STARTUP_FAILED' : 'STARTUP_TIMEOUT', what, { details });
      logger.error(`${what}${diagnosis ? `: ${diagnosis}` : ''}`);
      return 'failed';
    }
  }

  /** The error of a backend port another server shares (`what` says how it shows). */
  private ownAuth(): LlmserveError {
    return new LlmserveError('STARTUP_FAILED', `${this.label} answered 401 to llmserve's readiness check: vLLM's own API key is on (an api-key in a --config file of vLLM's arguments, or set by a vllm.command wrapper), and it would refuse every request the proxy forwards`, {
      exitCode: 2,
      details: ['Fix: remove api-key from vLLM\'s config file (and VLLM_API_KEY from a wrapper); keys go in proxy.master_key / LLMSERVE_MASTER_KEY, which the proxy checks.'],
    });
  }

  private sharedPort(port: number, what: string): LlmserveError {
    return new LlmserveError(
      'PORT_IN_USE',
      `backend port ${BACKEND_HOST}:${port} is shared with another server: ${what} (vLLM binds with SO_REUSEPORT, so a second server on the port does not fail); stop the other one, or choose another port with --backend-port N (vllm.port)`,
    );
  }

  private async waitReady(child: ManagedChild, first: boolean): Promise<'ready' | 'exited' | 'timeout' | 'stalled' | 'stopped' | { why: string } | { auth: true }> {
    const { plan, deps } = this.ctx;
    const url = `http://${BACKEND_HOST}:${this.spec.port}/v1/models`;
    // One start-up timeout for the whole first start: on a Ray head, the wait for the nodes spent part of it already
    // (the platform's startup probe is sized to the one timeout, and would kill a head still within twice it).
    const spent = first ? (this.ctx.spentBeforeFirstStart?.() ?? 0) : 0;
    const deadline = deps.now() + Math.max(0, plan.startupTimeout - spent) * 1000;
    for (;;) {
      if (this.stopping) return 'stopped';
      if (child.hasExited) return 'exited';
      const now = deps.now();
      if (now > deadline) return 'timeout';
      // Why a stall timeout: a wedged download or NCCL init prints nothing; progress frames reset it.
      if (now - this.lastOutputAt > plan.stallTimeout * 1000) return 'stalled';
      const check = await raceAbort(deps.httpGet(url, { timeoutMs: 2000 }), { exited: exitSignalOf(child) });
      if (check === 'exited') return 'exited';
      if (check.status === 401) {
        // vLLM's own auth is on (an `api-key` in a `--config` file of its arguments, or a wrapper's): it would refuse
        // every request the proxy forwards, and the start would wait out its whole timeout. Not when another server
        // shares the port: that one may be what refuses.
        const others = deps.otherListeners?.(this.spec.port, liveGroupMembers(child.pid));
        if (others === null || others === undefined || others.count === 0) return { auth: true };
      }
      if (check.ok) {
        // Why look further: vLLM binds its port with SO_REUSEPORT before it loads, so another server on that port (a
        // second llmserve, a vLLM started by hand) shares it without an error, and may be the one answering, even
        // before this vLLM listens at all. A listener that no process of this vLLM holds is that other server.
        const others = deps.otherListeners?.(this.spec.port, liveGroupMembers(child.pid));
        if (others !== null && others !== undefined) {
          if (others.count === 0) return 'ready';
          return { why: `${others.count === 1 ? 'a process that is not this vLLM listens' : `${others.count} sockets that are not this vLLM's listen`} on it${others.holder ? ` (${others.holder})` : ''}` };
        }
        // Where listeners cannot be seen (no /proc): a model list without the served name is another server's. Only
        // then, as a server started by a wrapper `vllm.command` may name its model otherwise.
        const listed = modelIds(check.body);
        if (listed !== null && !listed.includes(this.spec.servedModelName)) {
          return { why: `its /v1/models lists ${listed.length === 0 ? 'no model' : listed.slice(0, 3).map((m) => `"${m}"`).join(', ')}, not "${this.spec.servedModelName}"` };
        }
        return 'ready';
      }
      await raceAbort(sleep(READY_POLL_MS, this.ctx.stopSignal), { exited: exitSignalOf(child) });
    }
  }

  private async waitPortFree(port: number, waitMs: number): Promise<boolean> {
    const deadline = this.ctx.deps.now() + waitMs;
    for (;;) {
      if (await this.ctx.deps.isPortFree(port, BACKEND_HOST)) return true;
      if (this.ctx.deps.now() >= deadline || this.stopping) return false;
      await sleep(100, this.ctx.stopSignal);
    }
  }

  /** Marks the backend ready and healthy (after its first start or a restart). */
  markReady(): void {
    this.status = 'ready';
    this.healthy = true;
    this.failedChecks = 0;
    // A new vLLM, a new episode: one saturated from its first check is said busy again (the old one's flag stuck).
    this.busy = false;
    this.stall?.reset();
    this.stallBlindSaid = false;
  }

  /**
   * Watches a ready backend until a stop (`stopped`) or an exhausted restart budget (`give-up`): health checks
   * every interval, restarts after an unrequested exit or too many failed checks.
   */
  async watch(): Promise<'stopped' | 'give-up'> {
    const { plan } = this.ctx;
    const { logger } = this.ctx.deps;
    for (;;) {
      const tick = new AbortController();
      const child = this.child!;
      const event = await raceAbort(sleep(plan.healthInterval * 1000, tick.signal).then(() => 'tick' as const), { stopped: this.ctx.stopSignal, exit: exitSignalOf(child) });
      tick.abort();
      if (event === 'stopped') return 'stopped';
      let recovered: 'ready' | 'give-up' | 'stopped' = 'ready';
      if (event === 'tick') {
        const verdict = await this.healthCheck();
        if (verdict === 'stalled') {
          // As for a hung vLLM below: the proxy answers 503 + Retry-After from now on, not into the vLLM being stopped.
          this.status = 'restarting';
          this.healthy = false;
          this.ctx.changed(this, `${this.label}'s engine stalled`);
          if ((await this.stopForRestart(child)) === 'stopped') return 'stopped';
          recovered = await this.recover(`${this.label} stopped after its engine stalled`);
        } else if (verdict === 'hung') {
          // Why before the stop, not in recover() after it: a wedged vLLM can take the whole stop timeout (30 s) to
          // go, and meanwhile the proxy would send every new request into it (to hang until the SIGKILL, or to get
          // vLLM's own draining 503 without Retry-After); `restarting` has it answer 503 + Retry-After at once.
          this.status = 'restarting';
          this.healthy = false;
          this.ctx.changed(this, '');
          logger.error(`${this.label} failed ${HUNG_CHECKS_BEFORE_RESTART} health checks in a row: stopping it to restart it`);
          if ((await this.stopForRestart(child)) === 'stopped') return 'stopped';
          recovered = await this.recover(`${this.label} stopped after ${HUNG_CHECKS_BEFORE_RESTART} failed health checks`);
        }
      } else recovered = await this.recover();
      if (recovered !== 'ready') return recovered;
    }
  }

  /**
   * Stops a hung or stalled vLLM before its restart. `stopped` as soon as llmserve itself is asked to stop: a wedged
   * vLLM can take the whole stop timeout to go, and the drain must not wait for it (shutdown stops it with the rest).
   */
  private async stopForRestart(child: ManagedChild): Promise<'gone' | 'stopped'> {
    const gone = stopChild(child, this.ctx.plan.stopTimeout * 1000, this.ctx.killSignal).then(() => 'gone' as const);
    return raceAbort(gone, { stopped: this.ctx.stopSignal });
  }

  /**
   * One health check of /health; `hung` after HUNG_CHECKS_BEFORE_RESTART failures in a row; `stalled` when it passes
   * but the engine-stall watchdog finds requests waiting on an engine that stands still.
   */
  private async healthCheck(): Promise<'ok' | 'failed' | 'hung' | 'stalled'> {
    const { plan, deps } = this.ctx;
    const timeoutMs = Math.min(5000, Math.max(1000, plan.healthInterval * 1000));
    const url = `http://${BACKEND_HOST}:${this.spec.port}`;
    const result = await raceAbort(deps.httpGet(`${url}/health`, { timeoutMs }), { stopped: this.ctx.stopSignal });
    if (result === 'stopped' || this.status !== 'ready') return 'ok';
    if (result.timedOut === true && (await this.servingWhileSlow(url, timeoutMs))) {
      // Why a busy check ends a row of failures and removes not-healthy: it serves. Else one check that failed as the
      // load came in (before bytes flowed) kept not-healthy for the whole busy spell, and the platform restarts a
      // container on it; and a single failure after an hour of busy checks was counted as the third in a row.
      this.failedChecks = 0;
      // Serving time counts toward resetting the restart backoff, as a passing check's does.
      this.policy.recordHealthy(deps.now());
      if (!this.healthy) {
        this.healthy = true;
        this.ctx.changed(this, '');
      }
      return 'ok';
    }
    if (this.busy) {
      this.busy = false;
      if (result.ok) deps.logger.info(`${this.label} answers /health in time again`);
    }
    if (this.child && !this.child.hasExited) {
      const child = this.child;
      // Down from the members known (cheap with thousands of processes in view); a full scan where /proc cannot say,
      // and every tenth tick (a member whose parent exited since the last scan is below none of them).
      this.ticks += 1;
      const members = this.ticks % FULL_SCAN_EVERY === 0 ? null : groupMembersBelow(child.pid, [child.pid, ...this.pids]);
      for (const pid of members ?? liveGroupMembers(child.pid)) this.pids.add(pid);
    }
    this.failedChecks = result.ok ? 0 : this.failedChecks + 1;
    // --verbose's debug lines: every check, where the log otherwise shows only changes of health.
    deps.logger.debug(
      `${this.label} health check: ${result.ok ? 'ok' : `failed (${result.error ?? `status ${result.status}`}), ${this.failedChecks} of ${HUNG_CHECKS_BEFORE_RESTART} in a row before a restart`}`,
    );
    if (result.ok) this.policy.recordHealthy(deps.now());
    if (result.ok !== this.healthy) {
      this.healthy = result.ok;
      this.ctx.changed(this, result.ok ? '' : `${this.label} health check failed (${result.error ?? `status ${result.status}`})`);
    }
    if (this.failedChecks >= HUNG_CHECKS_BEFORE_RESTART) {
      this.failedChecks = 0;
      return 'hung';
    }
    if (result.ok && this.stall !== null && (await this.engineStalled(url, timeoutMs))) return 'stalled';
    return result.ok ? 'ok' : 'failed';
  }

  /**
   * The engine-stall watchdog's look at a vLLM whose /health passed: the proxy's count of requests waiting on it and
   * when any of them last got bytes, and (while requests wait) its engine's figures in /metrics. True once requests have
   * waited `engine_stall_timeout` without any sign of progress (engine-stall.ts); says why before returning it.
   */
  private async engineStalled(url: string, timeoutMs: number): Promise<boolean> {
    const { deps, plan } = this.ctx;
    const waiting = (await this.ctx.activityOf?.(url))?.waiting ?? null;
    let figures: string | null = null;
    let unread = '';
    if (waiting !== null && waiting.count > 0) {
      // Open even when vLLM has an API key (VLLM.md); the page can be large (histograms per model), so read it whole.
      const page = await raceAbort(deps.httpGet(`${url}/metrics`, { timeoutMs, maxBodyBytes: METRICS_PAGE_BYTES }), { stopped: this.ctx.stopSignal });
      if (page === 'stopped' || this.status !== 'ready') return false;
      figures = page.ok ? engineFigures(page.body) : null;
      unread = page.ok ? 'without token counters' : `not read: ${page.error ?? `status ${page.status}`}`;
      if (page.ok && figures === null && !this.stallBlindSaid) {
        this.stallBlindSaid = true;
        deps.logger.warn(`${this.label}'s /metrics has no token counters (vLLM started with --disable-log-stats?): engine_stall_timeout cannot tell a stalled engine from a busy one, and restarts nothing`);
      }
    }
    const now = deps.now();
    const quietMs = this.stall!.sample({ now, waiting: waiting?.count ?? null, sinceBytesMs: waiting?.heardMs ?? null, figures });
    // --verbose: what each look saw, while requests wait (why a stall was, or was not, declared).
    if (waiting !== null && waiting.count > 0) {
      const quiet = this.stall!.quietFor(now);
      deps.logger.debug(`${this.label} engine-stall watchdog: ${waiting.count} waiting, their last byte ${waiting.heardMs === null ? 'never' : `${waiting.heardMs} ms ago`}, /metrics ${figures === null ? unread : 'read'}, no progress for ${quiet === null ? '-' : formatSeconds(quiet / 1000)}`);
    } else if (waiting === null) deps.logger.debug(`${this.label} engine-stall watchdog: the proxy did not say what waits`);
    if (quietMs === null) return false;
    const n = waiting!.count;
    deps.logger.error(
      `${this.label}'s engine made no progress for ${formatSeconds(quietMs / 1000)} while ${n} request${n === 1 ? '' : 's'} waited on it (no response bytes, no change in its /metrics tokens, queue or KV cache; /health still passes): stopping it to restart it (engine_stall_timeout ${formatSeconds(plan.engineStallTimeout)})`,
    );
    return true;
  }

  /**
   * A /health that timed out while vLLM sent responses through the proxy within this check's window: a saturated
   * vLLM, whose API server answers /health late (its event loop is busy with the traffic), not a hung one. Why it
   * matters: restarting it would cut every request in flight and take the model away for a reload at peak load, and a
   * not-healthy file would have the platform do the same. Such a check is not failed (not-healthy goes, the failures
   * in a row start again), though it is not said as healthy; a vLLM that hangs sends nothing, and is still restarted
   * after three failed checks.
   */
  private async servingWhileSlow(url: string, timeoutMs: number): Promise<boolean> {
    const { plan, deps } = this.ctx;
    const since = (await this.ctx.activityOf?.(url))?.sinceMs ?? null;
    // The window: since the last check began, the proxy's one-second resolution included.
    if (since === null || since > plan.healthInterval * 1000 + timeoutMs + 1000) return false;
    if (!this.busy) {
      this.busy = true;
      deps.logger.warn(`${this.label} did not answer /health within ${timeoutMs} ms but sent a response ${since < 1000 ? 'within the last second' : `${formatSeconds(since / 1000)} ago`}: busy, not hung (not counted as a failed check)`);
    } else deps.logger.debug(`${this.label} health check: timed out, but it sent a response ${since} ms ago (busy)`);
    return true;
  }

  /** vLLM exited without being asked (any exit code: vLLM exits 0 when its engine dies): restart with backoff. */
  async recover(firstReason?: string): Promise<'ready' | 'give-up' | 'stopped'> {
    const { logger, now } = this.ctx.deps;
    const { plan } = this.ctx;
    let reason = firstReason;
    for (;;) {
      // No child when the start before never spawned one (its port was taken, `vllm` could not be run).
      const old = this.child;
      const exit = old !== null && old.hasExited ? await old.exited : null;
      // Decided first: the state the proxy is told (and logs) is `failed` for the failure that spends the budget,
      // not a `restarting` that never comes.
      const decision = this.policy.recordFailure(now());
      this.status = decision === null ? 'failed' : 'restarting';
      this.healthy = false;
      const why = reason ?? (exit ? `${this.label} exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`})` : null);
      reason = undefined;
      this.ctx.changed(this, why ?? '');
      const oldPids = old === null ? new Set<number>() : new Set([old.pid, ...this.pids, ...liveGroupMembers(old.pid)]);
      const left = old === null ? [] : await emptyGroup(old);
      if (left.length > 0) logger.error(`processes ${left.join(', ')} of the old ${this.label} survived SIGKILL`);
      // Why forget an emptied child: a later stop or restart would SIGKILL its old process group id, which by then
      // may belong to an unrelated process (with probes.require: any a model that gave up stays down for days).
      if (left.length === 0) this.child = null;
      if (decision === null) {
        logger.error(plan.restart.policy === 'never' ? 'restart policy is "never": giving up' : `${this.label} failed ${this.policy.failuresRecorded} times within ${formatSeconds(plan.restart.windowS)}: giving up`);
        return 'give-up';
      }
      await this.waitGpuMemoryReleased(oldPids);
      if (this.stopping) return 'stopped';
      // Why not "N of M allowed": the Mth failure gives up, so that read as one more restart than there is.
      logger.info(`restarting ${this.label} in ${formatSeconds(decision.delayMs / 1000)} (failure ${decision.failuresInWindow} within ${formatSeconds(plan.restart.windowS)}; the ${ordinal(plan.restart.maxFailures)} gives up)`);
      await sleep(decision.delayMs, this.ctx.stopSignal);
      if (this.stopping) return 'stopped';
      this.restarts += 1;
      this.ctx.restarting(this);
      let started: StartResult;
      try {
        started = await this.start(false);
      } catch (err) {
        // `vllm` could not be run at all: one more failure, with its message, like any failed restart.
        if (!(err instanceof LlmserveError)) throw err;
        logger.error(err.message);
        for (const line of err.details ?? []) logger.error(line);
        started = 'failed';
      }
      if (started === 'stopped') return 'stopped';
      if (started === 'ready') {
        this.markReady();
        this.ctx.changed(this, '');
        return 'ready';
      }
      // start() already said why this try failed (an exit, a stall, the start-up timeout); its child's exit, often
      // the SIGKILL llmserve itself sent, is no news and no "unexpected" exit.
      reason = '';
    }
  }

  /** Waits (bounded) until nvidia-smi no longer lists the old vLLM's processes, so the new one finds free memory. */
  private async waitGpuMemoryReleased(oldPids: Set<number>): Promise<void> {
    const { deps } = this.ctx;
    const deadline = deps.now() + 30_000;
    let said = false;
    while (deps.now() < deadline && !this.stopping) {
      // Stopped with the stop signal, and not waited for: a nvidia-smi stuck on a wedged driver (likely, right after
      // a GPU fault killed vLLM) would otherwise hold SIGTERM up for as long as it hangs.
      const query = deps.gpuMemoryHolders(this.ctx.stopSignal);
      const holders = await raceAbort(query, { stopped: this.ctx.stopSignal });
      if (holders === 'stopped') {
        // The stop signal SIGKILLed the query (util/run.ts); give it a moment to be gone, so that llmserve does not exit
        // before a child of its own (CI once found it still alive after llmserve's exit). Bounded: a query in
        // uninterruptible sleep inside the driver outlives any signal.
        await Promise.race([query, sleep(QUERY_GONE_MS)]);
        return;
      }
      if (holders !== null && !Array.isArray(holders)) {
        // Said, since nvidia-smi failing right after vLLM died is often the first sign of a GPU fault (an Xid error)
        // that the new vLLM will hit too.
        if (!this.stopping) deps.logger.warn(`nvidia-smi --query-compute-apps ${holders.failed}: cannot tell whether the old ${this.label} has released its GPU memory; starting the new one anyway`);
        return;
      }
      const old = holders?.filter((pid) => oldPids.has(pid)) ?? [];
      if (old.length === 0) return;
      if (!said) deps.logger.info(`waiting for the GPU memory of the old ${this.label} (pids ${old.join(', ')}) to be released`);
      said = true;
      await sleep(250, this.ctx.stopSignal);
    }
    if (!this.stopping) deps.logger.warn(`GPU memory of the old ${this.label} still looks held after 30 s; starting anyway`);
  }

  /** Stops the child (SIGTERM, grace, SIGKILL of the group); null when there is none. */
  async stop(graceMs: number): Promise<StopOutcome | null> {
    return this.child ? stopChild(this.child, graceMs, this.ctx.killSignal) : null;
  }
}

/** The fix for a start-up that timed out without a known cause: the setting that allows more, when it is slow. */
function timeoutFix(outcome: 'timeout' | 'stalled', startupTimeoutS: number, stallTimeoutS: number): string {
  return outcome === 'timeout'
    ? `Fix: if vLLM was still making progress (a large model's download or load), raise --startup-timeout (startup_timeout, now ${formatSeconds(startupTimeoutS)}); otherwise its last lines show where it stopped.`
    : `Fix: if vLLM works that long without a word (a download or a compilation that prints nothing), raise --stall-timeout (stall_timeout, now ${formatSeconds(stallTimeoutS)}); otherwise its last lines show where it stopped.`;
}

/** The warning printed when a flag vLLM rejected is dropped instead of failing the start. */
function droppedFlagWarning(flag: string): string {
  if (flag === SHUTDOWN_TIMEOUT_FLAG) {
    return `the installed vLLM does not accept ${flag} (added in March 2026): retrying without it; on SIGTERM vLLM will abort what is still in flight after llmserve's own drain`;
  }
  if (flag === DISABLE_ACCESS_LOG_FLAG) {
    return `the command does not accept ${flag}, which llmserve adds to keep vLLM's per-request access lines out of the log: retrying without it (vllm.access_log: true stops adding it)`;
  }
  return `the installed vLLM no longer accepts ${flag} (its intent is now the default): retrying without it`;
}

/** The model ids of an OpenAI model list, or null when the body is not one (cut, or not JSON: no verdict then). */
function modelIds(body: string): string[] | null {
  try {
    const data = (JSON.parse(body) as { data?: unknown }).data;
    if (!Array.isArray(data)) return null;
    return data.map((m) => (m !== null && typeof m === 'object' ? String((m as { id?: unknown }).id) : '')).filter((id) => id !== '');
  } catch {
    return null;
  }
}
