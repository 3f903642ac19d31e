// `--role worker`: one supervised `ray start --address=HEAD --block`, probe files for it, and a clean stop.
import { LlmserveError } from '../errors.js';
import type { RunCommand } from '../gpu/nvidia-smi.js';
import type { Logger } from '../log.js';
import { NOT_HEALTHY, NOT_READY, type ProbeFiles } from '../probes/files.js';
import { formatSeconds, raceAbort, sleep } from '../util/time.js';
import { exitSignalOf, type ManagedChild, type SpawnOptions } from './child.js';
import { rayStatusOnce, spawnRay, stopRay } from './ray.js';
import { RestartPolicy, type RestartSettings } from './restart-policy.js';
import { emptyGroup, isSignal, repeatedStop, type StopAsks } from './stop.js';

/** The line `ray start` prints once this node is part of the cluster. */
const JOINED = /Ray runtime started/;
/** Seconds between tries of the first join (the head may still be starting). */
const FIRST_JOIN_RETRY_MS = 5000;
/** How often a stopped worker asks whether the head still answers (each `ray status` itself takes a second or two). */
const HEAD_POLL_MS = 1000;

/** What the worker runs. */
export interface RayWorkerPlan {
  head: string;
  /** `ray start --address=HEAD --block`. */
  argv: string[];
  /** `ray status --address=HEAD`: the health check (the head is reachable). */
  statusArgv: string[];
  stopArgv: string[];
  env: NodeJS.ProcessEnv;
  /** Seconds. */
  healthInterval: number;
  startupTimeout: number;
  stopTimeout: number;
  /** Seconds a stopped worker stays in the cluster while the head answers: its drain (drain.delay + drain.timeout). */
  headDrainS: number;
  restart: RestartSettings;
}

/** Side effects of a Ray worker's supervision: logger, probe files, spawning, commands and clock. */
export interface RayWorkerDeps {
  logger: Logger;
  probes: ProbeFiles;
  spawn: (options: SpawnOptions) => Promise<ManagedChild>;
  run: RunCommand;
  now: () => number;
}

/** Ready once joined, healthy while the head answers, restarted (with backoff) when `ray start` exits. */
export class RayWorker {
  private child: ManagedChild | null = null;
  private healthy = true;
  /** The unreadable `ray status` text was reported once. */
  private saidUnread = false;
  private stopAsked = false;
  private readonly stopAsks: StopAsks = { signalled: false };
  private readonly stopCtl = new AbortController();
  private readonly killCtl = new AbortController();
  private readonly policy: RestartPolicy;

  constructor(
    private readonly plan: RayWorkerPlan,
    private readonly deps: RayWorkerDeps,
  ) {
    this.policy = new RestartPolicy(plan.restart);
  }

  /** First call: stop cleanly. A second signal: kill now. */
  requestStop(reason: string): void {
    if (this.stopAsked) return repeatedStop(reason, this.deps.logger, this.killCtl, this.stopAsks);
    this.stopAsks.signalled = isSignal(reason);
    this.stopAsked = true;
    this.deps.probes.markDown();
    this.deps.logger.info(isSignal(reason) ? `${reason} received: leaving the Ray cluster (send it again to kill at once)` : `${reason}: leaving the Ray cluster`);
    this.stopCtl.abort();
  }

  killAllNow(): void {
    this.deps.probes.markDown();
    this.child?.signalGroup('SIGKILL');
  }

  /** Runs until a signal (0) or an exhausted restart budget (1); no join within the start-up timeout throws (exit 3). */
  async run(): Promise<number> {
    this.deps.probes.set(NOT_READY, true);
    let code = 0;
    try {
      if ((await this.firstJoin()) === 'ready') {
        this.deps.probes.set(NOT_READY, false);
        this.deps.probes.set(NOT_HEALTHY, false);
        this.deps.logger.info(`ready: joined the Ray cluster at ${this.plan.head}`);
        code = await this.serve();
        if (code === 0 && this.child !== null && !this.child.hasExited) await this.stayWhileHeadDrains();
      }
    } catch (err) {
      await this.shutdown();
      throw err;
    }
    await this.shutdown();
    return code;
  }

  /**
   * The first join, tried again until the start-up timeout. Why: in a LeaderWorkerSet (or any deployment that
   * starts the pods together) a worker often starts before the head's Ray is up, and `ray start --address` gives up
   * after a few seconds; vLLM's own multi-node script retries the same way.
   */
  private async firstJoin(): Promise<'ready' | 'stopped'> {
    const deadline = this.deps.now() + this.plan.startupTimeout * 1000;
    for (;;) {
      const outcome = await this.join();
      if (outcome !== 'failed') return outcome;
      if (this.child !== null) await emptyGroup(this.child);
      if (this.deps.now() + FIRST_JOIN_RETRY_MS >= deadline) {
        throw new LlmserveError('STARTUP_TIMEOUT', `could not join the Ray head at ${this.plan.head} within the start-up timeout (${formatSeconds(this.plan.startupTimeout)})`, {
          details: ['Fix: check --head (HOST:PORT of `llmserve start --role head`, port 6379), that the head runs, and that this node can reach it.'],
        });
      }
      this.deps.logger.info(`the Ray head at ${this.plan.head} may not be up yet: trying again in ${formatSeconds(FIRST_JOIN_RETRY_MS / 1000)}`);
      await sleep(FIRST_JOIN_RETRY_MS, this.stopCtl.signal);
      if (this.stopCtl.signal.aborted) return 'stopped';
    }
  }

  /** Starts `ray start --address --block` and waits for its "Ray runtime started" line. */
  private async join(): Promise<'ready' | 'failed' | 'stopped'> {
    const { logger } = this.deps;
    let joined!: () => void;
    const joinedLine = new Promise<'joined'>((resolve) => (joined = () => resolve('joined')));
    const child = await spawnRay(this.deps.spawn, this.plan.argv, this.plan.env, logger, (line) => JOINED.test(line) && joined());
    this.child = child;
    logger.info(`ray start (pid ${child.pid}, own process group): joining ${this.plan.head}`);
    const timer = new AbortController();
    const outcome = await raceAbort(Promise.race([joinedLine, sleep(this.plan.startupTimeout * 1000, timer.signal).then(() => 'timeout' as const)]), {
      exited: exitSignalOf(child),
      stopped: this.stopCtl.signal,
    });
    timer.abort();
    if (outcome === 'joined') return 'ready';
    if (outcome === 'stopped') return 'stopped';
    const exit = child.hasExited ? await child.exited : null;
    const what = outcome === 'exited'
      ? `ray start exited before joining ${this.plan.head} (${exit?.signal ? `signal ${exit.signal}` : `exit code ${exit?.code}`})`
      : `ray start did not join ${this.plan.head} within the start-up timeout (${formatSeconds(this.plan.startupTimeout)})`;
    logger.error(what);
    return 'failed';
  }

  private async serve(): Promise<number> {
    const { logger, probes } = this.deps;
    for (;;) {
      const tick = new AbortController();
      const event = await raceAbort(sleep(this.plan.healthInterval * 1000, tick.signal).then(() => 'tick' as const), { stopped: this.stopCtl.signal, exit: exitSignalOf(this.child!) });
      tick.abort();
      if (event === 'stopped') return 0;
      if (event === 'tick') {
        const status = await rayStatusOnce(this.deps.run, this.plan.statusArgv, this.plan.env, this.stopCtl.signal);
        if (this.stopCtl.signal.aborted) return 0;
        // The head answers when `ray status` exits 0, whether or not llmserve can read its text (a new Ray format
        // must not mark a healthy worker unhealthy and get its pod, and with it the whole group, restarted).
        const ok = status.answers;
        if (ok && status.cluster === null && !this.saidUnread) {
          this.saidUnread = true;
          logger.warn(`ray status output not understood (the head answers, so this node stays healthy): ${JSON.stringify(status.raw.slice(0, 300))}`);
        }
        if (ok) this.policy.recordHealthy(this.deps.now());
        if (ok !== this.healthy) {
          this.healthy = ok;
          probes.set(NOT_HEALTHY, !ok);
          if (ok) logger.info('the Ray head answers again: not-healthy removed');
          else logger.warn(`the Ray head ${this.plan.head} does not answer ray status: not-healthy created`);
        }
        continue;
      }
      const exit = await this.child!.exited;
      this.healthy = false;
      probes.set(NOT_HEALTHY, true);
      logger.error(`ray start exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}): not-healthy created`);
      for (;;) {
        await stopRay(this.child!, undefined, this.plan.stopArgv, this.plan.env, 0, this.killCtl.signal);
        const decision = this.policy.recordFailure(this.deps.now());
        if (decision === null) {
          logger.error(`ray start failed ${this.policy.failuresRecorded} times within ${formatSeconds(this.plan.restart.windowS)}: giving up`);
          return 1;
        }
        logger.info(`rejoining in ${formatSeconds(decision.delayMs / 1000)}`);
        await sleep(decision.delayMs, this.stopCtl.signal);
        if (this.stopCtl.signal.aborted) return 0;
        const joined = await this.join();
        if (joined === 'stopped') return 0;
        if (joined === 'ready') break;
      }
      this.healthy = true;
      probes.set(NOT_HEALTHY, false);
      logger.info(`joined ${this.plan.head} again: not-healthy removed`);
    }
  }

  /**
   * After a stop asked while joined: stays in the cluster while the head answers `ray status`, at most the head's
   * drain (drain.delay + drain.timeout; a second signal leaves at once). Why: a rollout stops the head and its workers
   * together, and the head drains with vLLM's later pipeline stages on the workers; a worker that left at once took
   * its stage away, and every request of the drain failed with it. The head's own stop ends Ray there, and so this.
   */
  private async stayWhileHeadDrains(): Promise<void> {
    const { logger, now } = this.deps;
    const boundMs = this.plan.headDrainS * 1000;
    if (boundMs <= 0) return;
    logger.info(`staying in the Ray cluster while the head at ${this.plan.head} drains: until it no longer answers, at most ${formatSeconds(this.plan.headDrainS)} (send the signal again to leave now)`);
    const deadline = now() + boundMs;
    const kill = this.killCtl.signal;
    while (!kill.aborted && now() < deadline) {
      const status = await rayStatusOnce(this.deps.run, this.plan.statusArgv, this.plan.env, kill);
      if (kill.aborted) return;
      if (!status.answers) return void logger.info(`the Ray head at ${this.plan.head} no longer answers: leaving the cluster`);
      if (this.child === null || this.child.hasExited) return;
      await sleep(Math.min(HEAD_POLL_MS, Math.max(0, deadline - now())), kill);
    }
    if (!kill.aborted) logger.info(`the head still answers after ${formatSeconds(this.plan.headDrainS)}: leaving the cluster`);
  }

  /** `ray stop`, then SIGTERM/SIGKILL of the `ray start` group; both probe files stay. */
  private async shutdown(): Promise<void> {
    this.deps.probes.markDown();
    if (this.child) await stopRay(this.child, this.deps.run, this.plan.stopArgv, this.plan.env, this.plan.stopTimeout * 1000, this.killCtl.signal);
    this.deps.probes.markDown();
  }
}
