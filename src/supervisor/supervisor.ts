// The supervisor: one state machine that owns every decision about vLLM, the proxy and the probe files.
import { LlmserveError } from '../errors.js';
import { diagnose, rejectedRemovedFlags, withoutFlags } from '../engine/diagnose.js';
import { BACKEND_HOST } from '../engine/command.js';
import { NOT_HEALTHY, NOT_READY } from '../probes/files.js';
import { LineRing } from '../util/ring.js';
import { formatSeconds, sleep } from '../util/time.js';
import { liveGroupMembers, type ManagedChild } from './child.js';
import { RestartPolicy } from './restart-policy.js';
import { SHUTDOWN_TIMEOUT_FLAG } from './shutdown-timeout.js';
import { emptyGroup, stopChild } from './stop.js';
import type { SupervisorDeps, SupervisorPlan, SupervisorState } from './types.js';

const READY_POLL_MS = 100;
/** vLLM lines printed after a failed start. */
const LAST_LINES = 50;
/** vLLM lines searched for a diagnosis: the root cause often precedes pages of worker shutdown noise. */
const DIAGNOSIS_LINES = 500;
/** Consecutive failed backend health checks (port open, no answer) before vLLM counts as failed and restarts. */
const HUNG_CHECKS_BEFORE_RESTART = 3;

type StartResult = 'ready' | 'failed' | 'stopped';

/** Runs vLLM and the proxy through the life cycle of DESIGN.md; `run()` resolves to the exit code. */
export class Supervisor {
  private state: SupervisorState = 'starting';
  private vllm: ManagedChild | null = null;
  private proxy: ManagedChild | null = null;
  /** The current proxy said `listening`: only then does it handle IPC messages such as `drain`. */
  private proxyListening = false;
  private readonly stopCtl = new AbortController();
  private readonly killCtl = new AbortController();
  private readonly vllmLines = new LineRing(DIAGNOSIS_LINES);
  private lastVllmOutputAt = 0;
  /**
   * Every pid seen in the current vLLM's process group (sampled when it is ready and at each health check). Why:
   * a process that already died (an EngineCore killed by the OOM killer) may still be listed by nvidia-smi while
   * the driver frees its memory, and by then it can no longer be found in the group.
   */
  private vllmPids = new Set<number>();
  private vllmArgv: string[];
  private healthy = { backend: false, proxy: false };
  private failedBackendChecks = 0;
  private readonly backendPolicy: RestartPolicy;
  private readonly proxyPolicy: RestartPolicy;
  private startedAt = 0;
  private readonly stopRequested = new Promise<'stopped'>((resolve) => this.stopCtl.signal.addEventListener('abort', () => resolve('stopped'), { once: true }));

  constructor(
    private readonly plan: SupervisorPlan,
    private readonly deps: SupervisorDeps,
  ) {
    this.vllmArgv = [...plan.vllm.argv];
    this.backendPolicy = new RestartPolicy(plan.restart);
    this.proxyPolicy = new RestartPolicy(plan.restart);
  }

  /** The current life-cycle state. */
  get currentState(): SupervisorState {
    return this.state;
  }

  /** First call: drain and stop. A second call: kill everything now. Safe to call from a signal handler. */
  requestStop(reason: string): void {
    if (this.stopCtl.signal.aborted) {
      this.deps.logger.warn(`${reason} again: killing everything now`);
      this.killCtl.abort();
      return;
    }
    // The probe files go first, before anything else can fail: the platform must stop routing to us at once.
    this.deps.probes.markDown();
    this.deps.logger.info(`${reason} received: draining and stopping (send it again to kill at once)`);
    this.stopCtl.abort();
  }

  /** SIGHUP: the proxy re-reads its keys file without dropping connections. */
  reloadKeys(): void {
    this.deps.logger.info('SIGHUP received: reloading keys');
    this.proxy?.send({ type: 'reload-keys' });
  }

  /** Kills every child's process group synchronously: the last resort on an uncaught error. */
  killAllNow(): void {
    this.deps.probes.markDown();
    this.proxy?.signalGroup('SIGKILL');
    this.vllm?.signalGroup('SIGKILL');
  }

  /** Runs until a signal (0), a lost service (1); start-up problems throw LlmserveError (exit 2 or 3). */
  async run(): Promise<number> {
    this.startedAt = this.deps.now();
    this.deps.probes.set(NOT_READY, true);
    let code = 0;
    try {
      await this.startProxy();
      if (!this.stopping && (await this.startVllm(true)) === 'ready' && !this.stopping) {
        await this.waitProxyLive();
        if (!this.stopping) {
          this.markReady();
          code = await this.serve();
        }
      }
    } catch (err) {
      await this.shutdown();
      throw err;
    }
    await this.shutdown();
    return code;
  }

  private get stopping(): boolean {
    return this.stopCtl.signal.aborted;
  }

  // ---------------------------------------------------------------- the proxy

  private async startProxy(): Promise<void> {
    const { logger } = this.deps;
    const proxy = await this.deps.spawn({
      file: this.plan.proxy.file,
      args: this.plan.proxy.args,
      env: this.plan.proxy.env,
      ipc: true,
      onLine: (line, stream) => logger.passthrough('proxy', line, stream),
    });
    this.proxy = proxy;
    this.proxyListening = false;
    const listening = new Promise<{ type: string; code?: string; message?: string; port?: number }>((resolve) => {
      proxy.onMessage((m) => {
        const msg = m as { type?: string };
        if (msg.type === 'listening' || msg.type === 'fatal') resolve(msg as { type: string });
      });
    });
    // Settings and keys travel over IPC, never on argv where `ps` would show them.
    const state = this.state === 'ready' ? 'ready' : this.state === 'restarting' || this.state === 'unhealthy' ? 'restarting' : 'starting';
    proxy.send({ type: 'start', settings: { ...(this.plan.proxy.settings as object), state } });
    const outcome = await Promise.race([listening, proxy.exited.then(() => null), this.stopped()]);
    if (outcome === 'stopped') return;
    if (outcome === null || outcome.type === 'fatal') {
      let message = outcome?.message ?? 'the proxy exited before it was listening';
      if (outcome?.code === 'PORT_IN_USE') {
        const holder = this.deps.describePortHolder?.(this.plan.proxy.port);
        if (holder) message += ` by ${holder}`;
      }
      const code = outcome?.code === 'PORT_IN_USE' || outcome?.code === 'TLS' ? outcome.code : 'RUNTIME';
      await emptyGroup(proxy);
      throw new LlmserveError(code, message, code === 'RUNTIME' ? { exitCode: 3 } : {});
    }
    this.proxyListening = true;
  }

  private async waitProxyLive(): Promise<void> {
    const url = `${this.plan.proxy.publicUrl}/health/liveness`;
    const deadline = this.deps.now() + 10_000;
    while (!this.stopping && this.deps.now() < deadline) {
      const result = await this.deps.httpGet(url, { timeoutMs: 1000, insecure: this.plan.proxy.insecureTls });
      // Not recorded in this.healthy here: setHealth() must see the transition to remove `not-healthy`.
      if (result.ok) return;
      await sleep(READY_POLL_MS, this.stopCtl.signal);
    }
    if (!this.stopping) throw new LlmserveError('STARTUP_FAILED', `the proxy did not answer ${url} within 10 s`);
  }

  // ---------------------------------------------------------------- vLLM start-up

  /** Starts vLLM and waits until /v1/models answers. A first start that fails throws (exit 3). */
  private async startVllm(first: boolean): Promise<StartResult> {
    const { logger } = this.deps;
    for (;;) {
      const port = this.plan.vllm.port;
      if (!(await this.waitPortFree(port, first ? 0 : 10_000))) {
        if (this.stopping) return 'stopped';
        const holder = this.deps.describePortHolder?.(port);
        const error = new LlmserveError(
          'PORT_IN_USE',
          `backend port ${BACKEND_HOST}:${port} is already in use${holder ? ` by ${holder}` : ''}; stop it, or choose another port with --backend-port N (vllm.port)`,
        );
        if (first) throw error;
        logger.error(error.message);
        return 'failed';
      }
      this.vllmLines.clear();
      this.lastVllmOutputAt = this.deps.now();
      const [file, ...args] = this.vllmArgv as [string, ...string[]];
      const started = this.deps.now();
      const child = await this.deps
        .spawn({
          file,
          args,
          env: this.plan.vllm.env,
          onLine: (line, stream) => {
            this.vllmLines.push(line);
            this.lastVllmOutputAt = this.deps.now();
            logger.child('vllm', line, stream);
          },
        })
        .catch((err: NodeJS.ErrnoException) => {
          throw new LlmserveError('STARTUP_FAILED', `cannot run "${file}": ${err.code ?? err.message}`, {
            exitCode: err.code === 'ENOENT' ? 2 : 3,
            details: ['Fix: install vLLM (pip install vllm) so that `vllm` is on PATH, or set vllm.command.'],
          });
        });
      this.vllm = child;
      logger.info(`vLLM started (pid ${child.pid}, own process group); waiting for http://${BACKEND_HOST}:${port}/v1/models`);
      const outcome = await this.waitVllmReady(child);
      if (outcome === 'ready') {
        this.vllmPids = new Set(liveGroupMembers(child.pid));
        logger.info(`vLLM is ready after ${formatSeconds((this.deps.now() - started) / 1000)}`);
        return 'ready';
      }
      if (outcome === 'stopped') return 'stopped';
      // The last lines (the traceback) may still be in the pipe when the exit is seen, and orphaned workers keep
      // the pipe open: kill the group first, then read to the end (data already written survives the SIGKILL).
      await emptyGroup(child);
      await Promise.race([child.outputClosed, sleep(2000)]);
      const lines = this.vllmLines.toArray();
      if (outcome === 'exited') {
        const removed = rejectedRemovedFlags(lines, this.plan.vllm.droppableFlags);
        if (removed.length > 0 && this.vllmArgv.some((a) => removed.includes(a.split('=')[0]!.replace(/_/g, '-')))) {
          // Old scripts pass flags vLLM has since deleted whose intent is now the default, and vLLM before March
          // 2026 lacks the --shutdown-timeout llmserve adds: drop them, retry at once, and keep them dropped for
          // every restart (vllmArgv is the supervisor's, not the plan's).
          for (const flag of removed) logger.warn(droppedFlagWarning(flag));
          this.vllmArgv = withoutFlags(this.vllmArgv, removed);
          continue;
        }
      }
      const exit = child.hasExited ? await child.exited : null;
      const what =
        outcome === 'exited'
          ? `vLLM exited during start-up (${exit?.signal ? `signal ${exit.signal}` : `exit code ${exit?.code}`})`
          : outcome === 'timeout'
            ? `vLLM was not ready within the start-up timeout (${formatSeconds(this.plan.startupTimeout)})`
            : `vLLM printed nothing for ${formatSeconds(this.plan.stallTimeout)} while starting (stall timeout)`;
      const diagnosis = diagnose(lines);
      const last = lines.slice(-LAST_LINES);
      const details = [`last ${last.length} lines of vLLM:`, ...last.map((l) => `  ${l}`), ...(diagnosis ? [`diagnosis: ${diagnosis}`] : [])];
      if (first) throw new LlmserveError(outcome === 'exited' ? 'STARTUP_FAILED' : 'STARTUP_TIMEOUT', what, { details });
      logger.error(`${what}${diagnosis ? `: ${diagnosis}` : ''}`);
      return 'failed';
    }
  }

  private async waitVllmReady(child: ManagedChild): Promise<'ready' | 'exited' | 'timeout' | 'stalled' | 'stopped'> {
    const url = `http://${BACKEND_HOST}:${this.plan.vllm.port}/v1/models`;
    const deadline = this.deps.now() + this.plan.startupTimeout * 1000;
    const exited = child.exited.then(() => 'exited' as const);
    for (;;) {
      if (this.stopping) return 'stopped';
      if (child.hasExited) return 'exited';
      const now = this.deps.now();
      if (now > deadline) return 'timeout';
      // Why a stall timeout: a wedged download or NCCL init prints nothing; progress frames reset it.
      if (now - this.lastVllmOutputAt > this.plan.stallTimeout * 1000) return 'stalled';
      const check = await Promise.race([this.deps.httpGet(url, { timeoutMs: 2000 }), exited]);
      if (check === 'exited') return 'exited';
      if (check.ok) return 'ready';
      await Promise.race([sleep(READY_POLL_MS, this.stopCtl.signal), exited]);
    }
  }

  private async waitPortFree(port: number, waitMs: number): Promise<boolean> {
    const deadline = this.deps.now() + waitMs;
    for (;;) {
      if (await this.deps.isPortFree(port, BACKEND_HOST)) return true;
      if (this.deps.now() >= deadline || this.stopping) return false;
      await sleep(100, this.stopCtl.signal);
    }
  }

  // ---------------------------------------------------------------- serving

  private markReady(): void {
    this.state = 'ready';
    this.deps.probes.set(NOT_READY, false);
    this.deps.probes.set(NOT_HEALTHY, false);
    this.healthy = { backend: true, proxy: true };
    this.proxy?.send({ type: 'state', state: 'ready' });
    const seconds = (this.deps.now() - this.startedAt) / 1000;
    this.deps.logger.info(`ready after ${formatSeconds(seconds)}: ${this.plan.proxy.publicUrl} serves "${this.plan.vllm.servedModelName}"`);
  }

  /** The steady state: health loop and child exits, until a stop request (0) or the restart budget runs out (1). */
  private async serve(): Promise<number> {
    for (;;) {
      const tick = new AbortController();
      const vllm = this.vllm!;
      const proxy = this.proxy!;
      const event = await Promise.race([
        this.stopped(),
        vllm.exited.then(() => 'vllm' as const),
        proxy.exited.then(() => 'proxy' as const),
        sleep(this.plan.healthInterval * 1000, tick.signal).then(() => 'tick' as const),
      ]);
      tick.abort();
      if (event === 'stopped') return 0;
      if (event === 'tick') {
        if ((await this.healthCheck()) === 'hung') {
          this.deps.logger.error(`vLLM failed ${HUNG_CHECKS_BEFORE_RESTART} health checks in a row: stopping it to restart it`);
          await stopChild(vllm, this.plan.stopTimeout * 1000, this.killCtl.signal);
          if ((await this.recoverVllm(`vLLM stopped after ${HUNG_CHECKS_BEFORE_RESTART} failed health checks`)) === 'give-up') return 1;
        }
        continue;
      }
      const recovered = event === 'vllm' ? await this.recoverVllm() : await this.recoverProxy();
      if (recovered === 'give-up') return 1;
    }
  }

  private async healthCheck(): Promise<'ok' | 'failed' | 'hung'> {
    const timeoutMs = Math.min(5000, Math.max(1000, this.plan.healthInterval * 1000));
    const checks = Promise.all([
      this.deps.httpGet(`http://${BACKEND_HOST}:${this.plan.vllm.port}/health`, { timeoutMs }),
      this.deps.httpGet(`${this.plan.proxy.publicUrl}/health/liveness`, { timeoutMs, insecure: this.plan.proxy.insecureTls }),
    ]);
    const result = await Promise.race([checks, this.stopped()]);
    if (result === 'stopped' || this.state !== 'ready') return 'ok';
    const [backend, proxy] = result;
    if (this.vllm && !this.vllm.hasExited) for (const pid of liveGroupMembers(this.vllm.pid)) this.vllmPids.add(pid);
    this.failedBackendChecks = backend.ok ? 0 : this.failedBackendChecks + 1;
    this.setHealth(backend.ok, proxy.ok, backend.ok ? (proxy.error ?? `status ${proxy.status}`) : (backend.error ?? `status ${backend.status}`));
    if (backend.ok && proxy.ok) {
      this.backendPolicy.recordHealthy(this.deps.now());
      this.proxyPolicy.recordHealthy(this.deps.now());
    }
    if (this.failedBackendChecks >= HUNG_CHECKS_BEFORE_RESTART) {
      this.failedBackendChecks = 0;
      return 'hung';
    }
    return backend.ok && proxy.ok ? 'ok' : 'failed';
  }

  /** Updates `not-healthy` from the two health flags, logging only transitions. */
  private setHealth(backend: boolean, proxy: boolean, why: string): void {
    const was = this.healthy.backend && this.healthy.proxy;
    this.healthy = { backend, proxy };
    const is = backend && proxy;
    if (is === was) return;
    this.deps.probes.set(NOT_HEALTHY, !is);
    if (is) this.deps.logger.info('healthy again: not-healthy removed');
    else this.deps.logger.warn(`${backend ? 'proxy' : 'vLLM'} health check failed (${why}): not-healthy created`);
  }

  /** vLLM exited without being asked (any exit code: vLLM exits 0 when its engine dies): restart with backoff. */
  private async recoverVllm(firstReason?: string): Promise<'ready' | 'give-up' | 'stopped'> {
    const { logger } = this.deps;
    let reason = firstReason;
    for (;;) {
      const old = this.vllm!;
      const exit = old.hasExited ? await old.exited : null;
      this.state = 'restarting';
      this.deps.probes.set(NOT_HEALTHY, true);
      this.healthy.backend = false;
      this.proxy?.send({ type: 'state', state: 'restarting' });
      if (reason) logger.error(`${reason}: not-healthy created`);
      else if (exit) logger.error(`vLLM exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}): not-healthy created`);
      reason = undefined;
      const oldPids = new Set([old.pid, ...this.vllmPids, ...liveGroupMembers(old.pid)]);
      const left = await emptyGroup(old);
      if (left.length > 0) logger.error(`processes ${left.join(', ')} of the old vLLM survived SIGKILL`);
      const decision = this.backendPolicy.recordFailure(this.deps.now());
      if (decision === null) {
        logger.error(this.plan.restart.policy === 'never' ? 'restart policy is "never": giving up' : `vLLM failed ${this.backendPolicy.failuresRecorded} times within ${formatSeconds(this.plan.restart.windowS)}: giving up`);
        return 'give-up';
      }
      await this.waitGpuMemoryReleased(oldPids);
      logger.info(`restarting vLLM in ${formatSeconds(decision.delayMs / 1000)} (failure ${decision.failuresInWindow} of ${this.plan.restart.maxFailures} allowed within ${formatSeconds(this.plan.restart.windowS)})`);
      await sleep(decision.delayMs, this.stopCtl.signal);
      if (this.stopping) return 'stopped';
      const started = await this.startVllm(false);
      if (started === 'stopped') return 'stopped';
      if (started === 'ready') {
        this.state = 'ready';
        this.failedBackendChecks = 0;
        this.proxy?.send({ type: 'state', state: 'ready' });
        this.setHealth(true, this.healthy.proxy, '');
        return 'ready';
      }
    }
  }

  /** The proxy died: restart only the proxy; vLLM keeps its loaded model. */
  private async recoverProxy(): Promise<'ready' | 'give-up' | 'stopped'> {
    const { logger } = this.deps;
    for (;;) {
      const exit = await this.proxy!.exited;
      this.setHealth(this.healthy.backend, false, `exit ${exit.signal ?? exit.code}`);
      await emptyGroup(this.proxy!);
      const decision = this.proxyPolicy.recordFailure(this.deps.now());
      if (decision === null) {
        logger.error(`the proxy failed ${this.proxyPolicy.failuresRecorded} times: giving up`);
        return 'give-up';
      }
      logger.warn(`the proxy exited (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}): restarting only the proxy in ${formatSeconds(decision.delayMs / 1000)}`);
      await sleep(decision.delayMs, this.stopCtl.signal);
      if (this.stopping) return 'stopped';
      try {
        await this.startProxy();
        await this.waitProxyLive();
      } catch (err) {
        logger.error(`proxy restart failed: ${(err as Error).message}`);
        continue;
      }
      if (this.stopping) return 'stopped';
      this.setHealth(this.healthy.backend, true, '');
      return 'ready';
    }
  }

  /** Waits (bounded) until nvidia-smi no longer lists the old vLLM's processes, so the new one finds free memory. */
  private async waitGpuMemoryReleased(oldPids: Set<number>): Promise<void> {
    const deadline = this.deps.now() + 30_000;
    let said = false;
    while (this.deps.now() < deadline && !this.stopping) {
      const holders = await this.deps.gpuMemoryHolders();
      const old = holders?.filter((pid) => oldPids.has(pid)) ?? [];
      if (old.length === 0) return;
      if (!said) this.deps.logger.info(`waiting for the GPU memory of the old vLLM (pids ${old.join(', ')}) to be released`);
      said = true;
      await sleep(250, this.stopCtl.signal);
    }
    if (!this.stopping) this.deps.logger.warn('GPU memory of the old vLLM still looks held after 30 s; starting anyway');
  }

  // ---------------------------------------------------------------- stopping

  /** Resolves when a stop was requested; one promise for the whole run, so waits add no listeners. */
  private stopped(): Promise<'stopped'> {
    return this.stopRequested;
  }

  /** Drains the proxy, stops both children, leaves both probe files present. */
  private async shutdown(): Promise<void> {
    if (this.state === 'stopping') return;
    this.state = 'draining';
    this.deps.probes.markDown();
    const proxy = this.proxy;
    // Only a proxy that is listening handles `drain`; one still starting would never answer it.
    if (proxy && this.proxyListening && !proxy.hasExited && this.stopping && !this.killCtl.signal.aborted) {
      await sleep(this.plan.drainDelay * 1000, this.killCtl.signal);
      const drained = new Promise<void>((resolve) => proxy.onMessage((m) => (m as { type?: string }).type === 'drained' && resolve()));
      proxy.send({ type: 'drain', timeoutMs: this.plan.drainTimeout * 1000 });
      await Promise.race([drained, proxy.exited, sleep(this.plan.drainTimeout * 1000 + 1000, this.killCtl.signal)]);
    }
    this.state = 'stopping';
    const grace = this.plan.stopTimeout * 1000;
    const outcomes = await Promise.all([
      proxy ? stopChild(proxy, grace, this.killCtl.signal) : null,
      this.vllm ? stopChild(this.vllm, grace, this.killCtl.signal) : null,
    ]);
    if (outcomes[1] === 'killed') this.deps.logger.warn(`vLLM did not exit within ${formatSeconds(this.plan.stopTimeout)} of SIGTERM: killed its process group`);
    this.deps.probes.markDown();
  }
}

/** The warning printed when a flag vLLM rejected is dropped instead of failing the start. */
function droppedFlagWarning(flag: string): string {
  if (flag === SHUTDOWN_TIMEOUT_FLAG) {
    return `the installed vLLM does not accept ${flag} (added in March 2026): retrying without it; on SIGTERM vLLM will abort what is still in flight after llmserve's own drain`;
  }
  return `the installed vLLM no longer accepts ${flag} (its intent is now the default): retrying without it`;
}
