// The supervisor: one state machine that owns every decision about the backends (one vLLM per model), the
// proxy, an optional Ray head, and the probe files.
import { keyVariables } from '../engine/command.js';
import { LlmserveError } from '../errors.js';
import { NOT_HEALTHY, NOT_READY } from '../probes/files.js';
import { formatSeconds, raceAbort, sleep } from '../util/time.js';
import { Backend, type StartResult } from './backend.js';
import { exitSignalOf, type ManagedChild } from './child.js';
import { ProxyLink, type ProxyBackendState } from './proxy-link.js';
import { RestartPolicy } from './restart-policy.js';
import { rayHeadLostAtStart, spawnRay, stopRay, waitForCluster } from './ray.js';
import { emptyGroup, isSignal, repeatedStop, stopChild, type StopAsks } from './stop.js';
import type { SupervisorDeps, SupervisorPlan, SupervisorState } from './types.js';

const READY_POLL_MS = 100;

/** Runs the backends, the proxy (and a Ray head) through the life cycle of DESIGN.md; `run()` resolves to the exit code. */
export class Supervisor {
  private state: SupervisorState = 'starting';
  private readonly backends: Backend[];
  /** The proxy child and the IPC exchanges with it (its start, the states it has in force, its drain). */
  private readonly link: ProxyLink;
  private ray: ManagedChild | null = null;
  /** The service was marked ready once: only then does a stop drain. */
  private everReady = false;
  /** `not-ready` was removed once: only then may the platform be routing to us, and a stop waits out drain.delay. */
  private routed = false;
  private proxyHealthy = true;
  /** Mirrors the `not-healthy` file once ready, so that only transitions are written and logged. */
  private notHealthy = false;
  /** A stop was asked for (a signal); the stop controller below is also aborted internally to end the loops. */
  private stopAsked = false;
  private readonly stopAsks: StopAsks = { signalled: false };
  private readonly stopCtl = new AbortController();
  private readonly killCtl = new AbortController();
  private readonly proxyPolicy: RestartPolicy;
  /** Seconds a head waited for its Ray nodes: part of vLLM's first start-up timeout. */
  private clusterWaitS = 0;
  private startedAt = 0;
  /** Each backend's watch, started as soon as its first start is ready (before the whole service is). */
  private readonly watches: (Promise<'stopped' | 'give-up'> | undefined)[] = [];
  /** First-start failures already said (with several models under `any`, as they happen). */
  private readonly saidFailures = new WeakSet<object>();
  /** Wakes firstReady() to look again: a first start ended, or a backend changed. */
  private wakeFirstReady: () => void = () => {};

  constructor(
    private readonly plan: SupervisorPlan,
    private readonly deps: SupervisorDeps,
  ) {
    this.proxyPolicy = new RestartPolicy(plan.restart);
    this.link = new ProxyLink(plan.proxy, deps, this.stopCtl.signal);
    const ctx = {
      deps,
      plan,
      stopSignal: this.stopCtl.signal,
      killSignal: this.killCtl.signal,
      changed: (b: Backend, why: string) => this.backendChanged(b, why),
      restarting: (b: Backend) => {
        if (this.state === 'ready') this.sendState(b);
      },
      activityOf: (url: string) => this.link.activityOf(url),
      spentBeforeFirstStart: () => this.clusterWaitS,
    };
    this.backends = plan.backends.map((b) => new Backend(b, ctx, plan.backends.length > 1));
  }

  /** The current life-cycle state. */
  get currentState(): SupervisorState {
    return this.state;
  }

  /** First call: drain and stop. A second signal: kill everything now. Safe to call from a signal handler. */
  requestStop(reason: string): void {
    if (this.stopAsked) return repeatedStop(reason, this.deps.logger, this.killCtl, this.stopAsks);
    this.stopAsks.signalled = isSignal(reason);
    // The probe files go first, before anything else can fail: the platform must stop routing to us at once.
    this.deps.probes.markDown();
    // Before the service was ever ready nothing drains (shutdown() skips it): "draining" would send an operator
    // looking for a drain that never runs, and for drain.delay, which is not waited out either.
    const what = this.everReady ? 'draining and stopping' : 'stopping without waiting for the load (nothing served yet: no drain)';
    const during = this.everReady ? '' : ' during start-up';
    this.deps.logger.info(isSignal(reason) ? `${reason} received${during}: ${what} (send it again to kill at once)` : `${reason}${during}: ${what}`);
    this.stopAsked = true;
    // Readiness fails from the signal on (README), even while the drain waits for a restart in progress to end.
    if (this.everReady) this.link.sayStopping();
    this.stopCtl.abort();
  }

  /** SIGHUP: the proxy re-reads its keys file and its TLS certificate without dropping connections. */
  reloadKeys(): void {
    const file = this.plan.proxy.keysFile;
    const cert = this.plan.proxy.tlsCert ?? null;
    if (cert !== null) {
      // A renewed certificate (cert-manager rewrites the Secret's files) is served from the next connection on.
      this.deps.logger.info(`SIGHUP received: reloading the TLS certificate and key (${cert})`);
      this.link.child?.send({ type: 'reload-tls' });
    }
    if (file === null) {
      if (cert === null) this.deps.logger.info('SIGHUP received: no proxy.keys_file to reload (keys from the config and the environment are read at start only)');
      return;
    }
    this.deps.logger.info(`SIGHUP received: reloading keys from ${file}`);
    this.link.child?.send({ type: 'reload-keys' });
    void this.afterKeysReload(file);
  }

  /**
   * A reloaded keys file's raw keys are redacted from every line from now on, as the keys known at start are (a key
   * can reach a line that llmserve relays, vLLM's access log of a URL that carries it); and its key variables leave
   * the environment of every vLLM started from now on (below).
   */
  private async afterKeysReload(file: string): Promise<void> {
    const { envNames, values } = (await this.deps.keysFileSecrets?.(file)) ?? { envNames: [], values: [] };
    for (const value of values) this.deps.logger.redact(value);
    this.keepNewKeysFromVllm(file, envNames, values);
  }

  /**
   * A keys file that now reads a key from a variable it did not read at start, or lists a key that a variable holds
   * (an inherited OPENAI_API_KEY, say): vLLM was given that variable then (it was not a key yet), and a running
   * process's environment cannot be changed; every vLLM started from now on is started without it, as with the keys
   * known at start (engine/command.ts: by name and by value).
   */
  private keepNewKeysFromVllm(file: string, names: readonly string[], values: readonly string[]): void {
    const fresh = [...new Set(this.backends.flatMap((b) => keyVariables(b.spec.env, names, values)))].sort();
    if (fresh.length === 0) return;
    for (const b of this.backends) for (const name of fresh) delete b.spec.env[name];
    this.deps.logger.info(`keys that ${file} now lists are in ${fresh.join(', ')}: the running vLLM was started with ${fresh.length === 1 ? 'that variable (no key then)' : 'those variables (no keys then)'}; every vLLM started from now on is started without ${fresh.length === 1 ? 'it' : 'them'}`);
  }

  /** Kills every child's process group synchronously: the last resort on an uncaught error. */
  killAllNow(): void {
    this.deps.probes.markDown();
    this.link.child?.signalGroup('SIGKILL');
    for (const b of this.backends) b.child?.signalGroup('SIGKILL');
    this.ray?.signalGroup('SIGKILL');
  }

  /** Runs until a signal (0), a lost service (1); start-up problems throw LlmserveError (exit 2 or 3). */
  async run(): Promise<number> {
    this.startedAt = this.deps.now();
    this.deps.probes.set(NOT_READY, true);
    let code = 0;
    let initial: Promise<StartResult>[] = [];
    try {
      await this.startProxy();
      if (!this.stopping && (await this.startRay()) === 'ready' && !this.stopping) {
        initial = this.backends.map((b, i) =>
          b.start(true).then((r) => {
            if (r === 'ready') {
              b.markReady();
              this.backendChanged(b, '');
              // Watched from its own first start on, not from the service's: with several models a vLLM that dies
              // while another still loads (minutes) is restarted then, not found dead when the last one is ready.
              this.watches[i] = b.watch();
            }
            return r;
          }),
        );
        // A start that fails after the service is ready (probes.require: any) is handled by its backend's task.
        for (const p of initial) p.catch(() => {});
        let outcome = await this.untilFirstReady(initial);
        if (outcome === 'ready' && !this.stopping) {
          await this.waitProxyLive();
          outcome = this.stopping ? 'stopped' : await this.markReady();
          if (outcome === 'ready' && !this.stopping) code = await this.serve(initial);
        }
        if (outcome === 'give-up') {
          code = 1;
          // Lost before serving: the other starts (a model still loading) see the stop and end first, so that each
          // backend's child is the last one spawned when shutdown stops them.
          if (!this.stopping) this.stopCtl.abort();
          await Promise.allSettled([...initial, ...this.watches]);
        }
      }
    } catch (err) {
      // One model's first start failed (exit 3): the others' starts may still be under way (a retry without a
      // dropped flag spawns a new vLLM). They see the stop and end first, so that each backend's child is the last
      // one spawned when shutdown stops them, and no vLLM outlives llmserve.
      if (!this.stopping) this.stopCtl.abort();
      await Promise.allSettled([...initial, ...this.watches]);
      await this.shutdown();
      throw err;
    }
    // A watch started before the service was ready (a restart under way) ends on the stop signal too.
    await Promise.allSettled(this.watches);
    await this.shutdown();
    return code;
  }

  private get stopping(): boolean {
    return this.stopCtl.signal.aborted;
  }

  /**
   * firstReady, with the proxy watched meanwhile: a proxy that dies while vLLM loads is restarted on its own budget
   * (as later on), instead of being found dead after the load and failing the start that took minutes. A Ray head
   * that dies meanwhile ends the start (exit 3): vLLM's workers on the other nodes are gone with it, and the service
   * must not be announced ready only to be given up at the first tick.
   */
  private async untilFirstReady(initial: Promise<StartResult>[]): Promise<'ready' | 'stopped' | 'give-up'> {
    const ready = this.firstReady(initial);
    for (;;) {
      const event = await raceAbort(ready, { proxy: exitSignalOf(this.link.child!), ray: this.ray === null ? undefined : exitSignalOf(this.ray) });
      if (event === 'ray') {
        if (this.stopping) return 'stopped';
        throw rayHeadLostAtStart(await this.ray!.exited);
      }
      if (event !== 'proxy') return event;
      if (this.stopping) return 'stopped';
      const recovered = await this.recoverProxy();
      if (recovered !== 'ready') return recovered;
    }
  }

  /**
   * Resolves `ready` once the requirement is met (every backend healthy for `all`, one for `any`), checked again on
   * every first start's outcome and every backend change, since a backend that was ready may have died and be
   * restarting meanwhile. A first start that fails throws (exit 3): at once with `all`, with `any` once none is left
   * that could serve. `give-up` when a ready backend's restart budget ran out and the requirement can no longer be met.
   */
  private async firstReady(initial: Promise<StartResult>[]): Promise<'ready' | 'stopped' | 'give-up'> {
    const outcomes: ({ result: StartResult } | { error: unknown } | undefined)[] = initial.map(() => undefined);
    // With several models under `any`, each first start that fails is said when it fails (its last lines and
    // diagnosis), not only the one thrown once no model is left, nor only once another model is ready.
    const sayEach = this.plan.require === 'any' && this.backends.length > 1;
    const failures: unknown[] = [];
    initial.forEach((p, i) =>
      p.then(
        (result) => ((outcomes[i] = { result }), this.wakeFirstReady()),
        (error: unknown) => {
          outcomes[i] = { error };
          failures.push(error);
          if (sayEach && !this.stopping) this.sayStartFailure(error);
          this.wakeFirstReady();
        },
      ),
    );
    for (;;) {
      const change = new Promise<void>((resolve) => (this.wakeFirstReady = resolve));
      if (this.stopping) return 'stopped';
      const failed = outcomes.find((o) => o !== undefined && 'error' in o) as { error: unknown } | undefined;
      const ended = (i: number) => {
        const o = outcomes[i];
        return o !== undefined && ('error' in o || o.result !== 'ready' || this.backends[i]!.status === 'failed');
      };
      if (this.plan.require === 'all') {
        if (failed !== undefined) throw failed.error;
        if (outcomes.some((o) => o !== undefined && 'result' in o && o.result !== 'ready')) return 'stopped';
        if (this.backends.some((b) => b.status === 'failed')) return 'give-up';
        if (outcomes.every((o) => o !== undefined) && this.requirementMet()) return 'ready';
      } else {
        if (this.requirementMet()) return 'ready';
        if (this.backends.every((_, i) => ended(i))) {
          if (failed !== undefined) throw sayEach ? noModelStarted(failures) : failed.error;
          return this.backends.some((b) => b.status === 'failed') ? 'give-up' : 'stopped';
        }
      }
      await raceAbort(change, { stopped: this.stopCtl.signal });
    }
  }

  // ---------------------------------------------------------------- the proxy

  /** A backend's state for the proxy. */
  private proxyState(b: Backend): ProxyBackendState {
    return this.state === 'starting' && b.status === 'ready' ? 'starting' : b.status;
  }

  /** Starts a proxy (the first, or one after a crash) with every backend's state as it is now. */
  private async startProxy(): Promise<void> {
    const several = this.backends.length > 1;
    await this.link.start(
      () => ({
        state: several ? this.overallState() : this.proxyState(this.backends[0]!),
        restarts: this.restarts(),
        ...(several ? { backendStates: Object.fromEntries(this.backends.map((b) => [b.spec.servedModelName, this.proxyState(b)])) } : {}),
      }),
      () => {
        for (const b of this.backends) this.sendState(b);
      },
    );
  }

  private async waitProxyLive(): Promise<void> {
    const url = `${this.plan.proxy.publicUrl}/health/liveness`;
    const deadline = this.deps.now() + 10_000;
    while (!this.stopping && this.deps.now() < deadline) {
      const result = await this.deps.httpGet(url, { timeoutMs: 1000, insecure: this.plan.proxy.insecureTls });
      if (result.ok) return;
      await sleep(READY_POLL_MS, this.stopCtl.signal);
    }
    if (!this.stopping) throw new LlmserveError('STARTUP_FAILED', `the proxy did not answer ${url} within 10 s`);
  }

  /** The child that exited while it should be serving (a ready vLLM, the proxy), named; null when none. */
  private deadChild(): string | null {
    const b = this.backends.find((x) => x.status === 'ready' && x.child !== null && x.child.hasExited);
    if (b !== undefined) return b.label;
    return this.link.child !== null && this.link.child.hasExited ? 'the proxy' : null;
  }

  /** Waits (bounded) until the proxy's /health/readiness answers 200, i.e. it has taken the ready state. */
  private async waitProxyReady(): Promise<void> {
    const url = `${this.plan.proxy.publicUrl}/health/readiness`;
    const deadline = this.deps.now() + 5000;
    while (!this.stopping) {
      // It never will, with a child dead or a model down (its watch restarting it): no 5 s wait for that.
      if (this.deadChild() !== null || !this.requirementMet()) return;
      const result = await this.deps.httpGet(url, { timeoutMs: 1000, insecure: this.plan.proxy.insecureTls });
      if (result.ok) return;
      if (this.deps.now() >= deadline) {
        this.deps.logger.warn(`${url} did not answer 200 within 5 s of vLLM being ready (status ${result.status ?? result.error}); marking ready anyway`);
        return;
      }
      await sleep(10, this.stopCtl.signal);
    }
  }

  // ---------------------------------------------------------------- Ray (--role head)

  /** Starts `ray start --head --block` and waits for the cluster's nodes; `ready` at once without a Ray plan. */
  private async startRay(): Promise<'ready' | 'stopped'> {
    const ray = this.plan.ray;
    if (ray === undefined) return 'ready';
    const { logger } = this.deps;
    if (this.deps.run === undefined) throw new LlmserveError('RUNTIME', 'a Ray plan needs deps.run');
    const started = this.deps.now();
    this.ray = await spawnRay(this.deps.spawn, ray.argv, ray.env, logger);
    logger.info(`Ray head started (pid ${this.ray.pid}, own process group)`);
    const outcome = await waitForCluster({
      run: this.deps.run,
      statusArgv: ray.statusArgv,
      env: ray.env,
      head: this.ray,
      nodes: ray.nodes,
      gpusPerNode: ray.gpusPerNode,
      timeoutS: this.plan.startupTimeout,
      now: this.deps.now,
      logger,
      stop: this.stopCtl.signal,
    });
    if (outcome === 'ready') {
      this.clusterWaitS = (this.deps.now() - started) / 1000;
      logger.info(`Ray cluster ready: ${ray.nodes} nodes; starting vLLM across them (${formatSeconds(Math.max(0, this.plan.startupTimeout - this.clusterWaitS))} of the start-up timeout left)`);
    }
    return outcome;
  }

  // ---------------------------------------------------------------- serving

  /** Ready with every backend that is (for `any`, at least one), or `starting` / `restarting`. */
  private overallState(): ProxyBackendState {
    if (this.state === 'starting') return 'starting';
    if (this.requirementMet()) return 'ready';
    return this.backends.some((b) => b.status === 'restarting') ? 'restarting' : 'starting';
  }

  private requirementMet(): boolean {
    return this.plan.require === 'all' ? this.backends.every((b) => b.healthy) : this.backends.some((b) => b.healthy);
  }

  /** The service is ready: the proxy takes the state, then `not-ready` goes; `give-up` when the proxy cannot be restarted. */
  private async markReady(): Promise<'ready' | 'stopped' | 'give-up'> {
    this.state = 'ready';
    this.everReady = true;
    for (const b of this.backends) this.sendState(b);
    // The state travels over IPC, the platform's traffic over TCP: remove not-ready only once every proxy worker
    // has the state and the proxy's own readiness endpoint says ready, so that no routed request is answered 503.
    await this.link.stateApplied();
    await this.waitProxyReady();
    // A proxy that died meanwhile answers nothing: not-ready stays until a new one listens (it starts with the
    // ready state) and answers, as README promises, rather than going while the public port refuses connections.
    while (!this.stopping && this.link.child !== null && this.link.child.hasExited) {
      const recovered = await this.recoverProxy();
      if (recovered !== 'ready') return recovered;
      await this.waitProxyReady();
    }
    if (this.stopping) return 'stopped';
    // A vLLM that died since it was found ready (its watch may have it restarting already, or not have seen the exit
    // yet): not-healthy is kept, and set before not-ready goes, so that the platform never sees the service ready and
    // healthy for a moment; the watch removes it once the requirement is met again.
    const dead = this.deadChild();
    const healthy = dead === null && this.requirementMet();
    if (!healthy) {
      this.deps.probes.set(NOT_HEALTHY, true);
      this.notHealthy = true;
    }
    this.deps.probes.set(NOT_READY, false);
    this.routed = true;
    if (healthy) {
      this.deps.probes.set(NOT_HEALTHY, false);
      this.notHealthy = false;
      this.proxyHealthy = true;
    } else {
      // Those that were up and are not (a model still loading never went down).
      const down = this.backends.filter((b) => !b.healthy && b.status !== 'starting').map((b) => b.label);
      this.deps.logger.warn(`${dead ?? down.join(', ')} ${dead !== null ? 'exited' : 'went down'} just after start-up: not-healthy kept`);
    }
    const seconds = (this.deps.now() - this.startedAt) / 1000;
    const serving = this.backends.filter((b) => b.status === 'ready').map((b) => `"${b.spec.servedModelName}"${b.spec.summary ? ` on ${b.spec.summary}` : ''}`);
    const loading = this.backends.filter((b) => b.status !== 'ready').map((b) => `"${b.spec.servedModelName}"${b.status === 'restarting' ? ' (restarting)' : ''}`);
    this.deps.logger.info(`ready after ${formatSeconds(seconds)}: ${this.plan.proxy.publicUrl} serves ${serving.length > 0 ? serving.join(', ') : 'no model yet'}${loading.length ? ` (still starting: ${loading.join(', ')})` : ''}`);
    return 'ready';
  }

  /**
   * Tells the proxy one backend's state (with one model, the message carries no model name, as before) and every
   * backend's restarts so far, for llmserve_backend_restarts_total.
   */
  private sendState(b: Backend): void {
    const several = this.backends.length > 1;
    this.link.sendState({ state: this.proxyState(b), ...(several ? { model: b.spec.servedModelName } : {}), restarts: this.restarts() });
  }

  /** Restarts of every backend since llmserve started (a restarted proxy carries the count on). */
  private restarts(): number {
    return this.backends.reduce((sum, b) => sum + b.restarts, 0);
  }

  /** A backend's status or health changed: tell the proxy, and update `not-healthy` against the requirement. */
  private backendChanged(b: Backend, why: string): void {
    this.wakeFirstReady();
    if (this.state !== 'ready') {
      // Before the service is ready no probe file follows a backend (not-ready is there), but a ready model's vLLM
      // dying while another still loads is news all the same.
      if (why) this.deps.logger[b.status === 'restarting' || b.status === 'failed' ? 'error' : 'warn'](why);
      return;
    }
    this.sendState(b);
    this.updateHealth(why, b.status === 'restarting' || b.status === 'failed' ? 'error' : 'warn');
  }

  /**
   * Healthy as `not-healthy` means it: the proxy answers, and once the service is ready, the backends meet
   * `probes.require`. Before that, models still loading are no failure: a proxy restarted during a long first load
   * removes the `not-healthy` its crash created once it answers (a liveness probe would kill the load otherwise).
   */
  private healthyNow(): boolean {
    return this.proxyHealthy && (this.state !== 'ready' || this.requirementMet());
  }

  /**
   * Updates `not-healthy` from the proxy's health and the backends' against `probes.require`, logging `why`
   * (a failure) with what it did. Only transitions touch the file.
   */
  private updateHealth(why: string, level: 'warn' | 'error'): void {
    const is = this.healthyNow();
    const was = !this.notHealthy;
    if (is && !was) {
      // Healthy again: `not-healthy` goes once every proxy worker has the state that says so (a request routed at
      // once could reach a worker that still answers 503), and only if nothing failed meanwhile.
      void this.link.stateApplied().then(() => {
        if (this.stopping || !this.notHealthy || !this.healthyNow()) return;
        this.notHealthy = false;
        this.deps.probes.set(NOT_HEALTHY, false);
        if (why) this.deps.logger[level](`${why}; the other models keep serving (probes.require: ${this.plan.require})`);
        else this.deps.logger.info('healthy again: not-healthy removed');
      });
      return;
    }
    if (!is && was) {
      this.notHealthy = true;
      this.deps.probes.set(NOT_HEALTHY, true);
    }
    if (why) {
      // An error is said even when not-healthy was already there (a failed check before the restart): as such.
      if (!is && (is !== was || level === 'error')) this.deps.logger[level](`${why}: not-healthy ${is !== was ? 'created' : 'kept'}`);
      else if (is) this.deps.logger[level](`${why}; the other models keep serving (probes.require: ${this.plan.require})`);
    }
  }

  /** A failed first start's message and its details (vLLM's last lines, the diagnosis), once. */
  private sayStartFailure(err: unknown): void {
    if (typeof err === 'object' && err !== null) {
      if (this.saidFailures.has(err)) return;
      this.saidFailures.add(err);
    }
    this.deps.logger.error(`${(err as Error).message}`);
    for (const line of (err as LlmserveError).details ?? []) this.deps.logger.error(line);
  }

  /** One backend's life after its first start: a start that failed late is retried, then it is watched. */
  private async backendTask(b: Backend, initial: Promise<StartResult>, i: number): Promise<'stopped' | 'give-up'> {
    let result: StartResult;
    try {
      result = await initial;
    } catch (err) {
      // Only with probes.require: any can a first start fail while the service is up: count it and retry.
      this.sayStartFailure(err);
      result = 'failed';
    }
    if (result === 'stopped') return 'stopped';
    if (result === 'failed') {
      // The failed start was said above (or by start() itself): its exit is no news, and no "unexpected" exit.
      const recovered = await b.recover('');
      if (recovered !== 'ready') return recovered;
      return b.watch();
    }
    // Ready at its first start: watched since then.
    return this.watches[i] ?? b.watch();
  }

  /**
   * A backend's restart budget ran out; true when that loses the service (exit 1): always with `probes.require:
   * all` (or one model), with `any` only once no model is left that could serve. Otherwise that model stays down
   * (its processes are gone; the proxy answers 503 for it) and the others keep serving.
   */
  private backendGaveUp(b: Backend): boolean {
    if (this.plan.require === 'all' || this.backends.length === 1) return true;
    this.sendState(b);
    if (this.backends.every((x) => x.status === 'failed')) {
      this.deps.logger.error('every model gave up: no model is left to serve');
      return true;
    }
    const others = this.requirementMet() ? 'the other models keep serving' : 'not-healthy until another model is healthy again';
    this.deps.logger.error(`${b.label} is stopped for good: requests for "${b.spec.servedModelName}" get 503 until llmserve restarts; ${others} (probes.require: any)`);
    this.updateHealth('', 'error');
    return false;
  }

  /** The steady state: proxy health and exits, until a stop request (0) or a lost service (1). */
  private async serve(initial: Promise<StartResult>[]): Promise<number> {
    const tasks = this.backends.map((b, i) => this.backendTask(b, initial[i]!, i));
    const gaveUp = new AbortController();
    tasks.forEach((t, i) => void t.then((r) => r === 'give-up' && this.backendGaveUp(this.backends[i]!) && gaveUp.abort()));
    try {
      for (;;) {
        const tick = new AbortController();
        const proxy = this.link.child!;
        const event = await raceAbort(sleep(this.plan.healthInterval * 1000, tick.signal).then(() => 'tick' as const), {
          stopped: this.stopCtl.signal,
          'give-up': gaveUp.signal,
          ray: this.ray === null ? undefined : exitSignalOf(this.ray),
          proxy: exitSignalOf(proxy),
        });
        tick.abort();
        if (event === 'stopped') return 0;
        if (event === 'give-up') return 1;
        if (event === 'ray') {
          const exit = await this.ray!.exited;
          this.deps.probes.set(NOT_HEALTHY, true);
          this.deps.logger.error(`the Ray head exited (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}): the cluster is gone, giving up`);
          return 1;
        }
        if (event === 'tick') {
          await this.proxyCheck();
          continue;
        }
        if ((await this.recoverProxy()) === 'give-up') return 1;
      }
    } finally {
      // The backends' own loops end on the stop signal; a give-up stops the rest through shutdown().
      if (!this.stopping) this.stopCtl.abort();
      await Promise.allSettled(tasks);
    }
  }

  private async proxyCheck(): Promise<void> {
    const timeoutMs = Math.min(5000, Math.max(1000, this.plan.healthInterval * 1000));
    const check = () => raceAbort(this.deps.httpGet(`${this.plan.proxy.publicUrl}/health/liveness`, { timeoutMs, insecure: this.plan.proxy.insecureTls }), { stopped: this.stopCtl.signal });
    let result = await check();
    // Why once more at once: with several proxy workers the kernel may have handed this check to a worker that died
    // under it (the proxy replaces it and serves on); a fresh connection goes to one that serves. A proxy that is down
    // fails this one too.
    if (result !== 'stopped' && !result.ok && result.error === 'ECONNRESET') result = await check();
    if (result === 'stopped') return;
    // A proxy that died under the check: its exit, handled next, says so and creates not-healthy; a "health check
    // failed" line before it would be noise.
    if (!result.ok && this.link.child?.hasExited === true) return;
    if (result.ok) this.proxyPolicy.recordHealthy(this.deps.now());
    if (result.ok === this.proxyHealthy) return;
    this.proxyHealthy = result.ok;
    this.updateHealth(result.ok ? '' : `proxy health check failed (${result.error ?? `status ${result.status}`})`, 'warn');
  }

  /** The proxy died: restart only the proxy; the backends keep their loaded models. */
  private async recoverProxy(): Promise<'ready' | 'give-up' | 'stopped'> {
    const { logger } = this.deps;
    // Set when llmserve itself killed a proxy whose restart failed: its SIGKILL is no news of its own.
    let killedAfterFailedRestart = false;
    for (;;) {
      const exited = await raceAbort(this.link.child!.exited, { stopped: this.stopCtl.signal });
      if (exited === 'stopped') return 'stopped';
      const exit = exited;
      const why = killedAfterFailedRestart ? 'the restarted proxy failed (llmserve killed it)' : `the proxy exited (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`})`;
      killedAfterFailedRestart = false;
      // not-healthy at once; said with the exit below, in one line (no health check failed: the proxy is gone).
      let created = false;
      if (this.proxyHealthy) {
        this.proxyHealthy = false;
        created = !this.notHealthy;
        this.updateHealth('', 'warn');
      }
      await emptyGroup(this.link.child!);
      const decision = this.proxyPolicy.recordFailure(this.deps.now());
      if (decision === null) {
        logger.error(`${why}; the proxy failed ${this.proxyPolicy.failuresRecorded} times: giving up`);
        return 'give-up';
      }
      logger.warn(`${why}: restarting only the proxy in ${formatSeconds(decision.delayMs / 1000)}${created ? ' (not-healthy until it answers)' : ''}`);
      await sleep(decision.delayMs, this.stopCtl.signal);
      if (this.stopping) return 'stopped';
      try {
        await this.startProxy();
        await this.waitProxyLive();
      } catch (err) {
        logger.error(`proxy restart failed: ${(err as Error).message}`);
        // Why kill it: a proxy that listens but never answers would otherwise be waited on forever at the top of
        // this loop (its exit), and with it every later signal. A start that failed outright (bad TLS files) has
        // had its group killed already: its SIGKILL is no more news than this one's.
        killedAfterFailedRestart = true;
        if (this.link.child !== null && !this.link.child.hasExited) await emptyGroup(this.link.child);
        continue;
      }
      if (this.stopping) return 'stopped';
      this.proxyHealthy = true;
      this.updateHealth('', 'warn');
      return 'ready';
    }
  }

  // ---------------------------------------------------------------- stopping

  /** Drains the proxy, stops every child (Ray last), leaves both probe files present. */
  private async shutdown(): Promise<void> {
    if (this.state === 'stopping') return;
    const requested = this.stopAsked;
    this.state = 'draining';
    this.deps.probes.markDown();
    const proxy = this.link.child;
    // Only a proxy that is listening handles `drain`; one still starting would never answer it. And only a service
    // that was ready once has anything to drain: a stop during the first load stops at once (README), without
    // waiting out drain.delay.
    if (this.link.serving && requested && this.everReady && !this.killCtl.signal.aborted) {
      // Readiness fails at once, like `not-ready`, so that an HTTP health check takes the replica out during the delay.
      this.link.sayStopping();
      // drain.delay is for the platform to stop routing here; with not-ready never removed (a stop while the service
      // was being marked ready) it never routed, and the requests in flight are drained below without it.
      if (this.routed) await sleep(this.plan.drainDelay * 1000, this.killCtl.signal);
      const remaining = await this.link.drain(this.plan.drainTimeout * 1000, this.killCtl.signal, (exit) => {
        // Said, since the requests it still had are lost with it: not a client's doing, nor vLLM's.
        if (this.state === 'draining') this.deps.logger.error(`the proxy exited during the drain (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}): the requests it still had in flight were cut`);
      });
      // The one loss a stop can cause: say it, so that it is not mistaken for a client's or vLLM's fault.
      if (remaining > 0) {
        this.deps.logger.warn(`drain: ${remaining} request${remaining === 1 ? '' : 's'} still in flight after drain.timeout (${formatSeconds(this.plan.drainTimeout)}): stopping anyway, they are cut (a longer drain.timeout, within the platform's grace period, lets them finish)`);
      }
    }
    this.state = 'stopping';
    // Starts still waiting for a backend give up now (they watch the stop signal).
    if (!this.stopping) this.stopCtl.abort();
    const grace = this.plan.stopTimeout * 1000;
    const [, ...outcomes] = await Promise.all([proxy ? stopChild(proxy, grace, this.killCtl.signal) : null, ...this.backends.map((b) => b.stop(grace))]);
    outcomes.forEach((o, i) => {
      if (o === 'killed') this.deps.logger.warn(`${this.backends[i]!.label} did not exit within ${formatSeconds(this.plan.stopTimeout)} of SIGTERM: killed its process group`);
      else if (o === 'killed-at-once') this.deps.logger.warn(`${this.backends[i]!.label}: killed its process group at once (second signal)`);
    });
    if (this.ray && this.plan.ray) await stopRay(this.ray, this.deps.run, this.plan.ray.stopArgv, this.plan.ray.env, grace, this.killCtl.signal);
    this.deps.probes.markDown();
  }
}

/**
 * Every model's first start failed (several models under `any`; each failure was said as it happened): the exit code
 * of the first to fail.
 */
function noModelStarted(failures: readonly unknown[]): LlmserveError {
  const first = failures[0];
  const code = first instanceof LlmserveError ? first.code : 'STARTUP_FAILED';
  const exitCode = first instanceof LlmserveError ? first.exitCode : undefined;
  return new LlmserveError(code, `no model could start: every model's first start failed (each said above)`, exitCode === undefined ? {} : { exitCode });
}
