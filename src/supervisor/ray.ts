// The Ray cluster around a multi-node vLLM: read `ray status`, run `ray start` as a supervised child, `ray stop`.
import { LlmserveError } from '../errors.js';
import type { RunCommand } from '../gpu/nvidia-smi.js';
import type { Logger } from '../log.js';
import { formatSeconds, raceAbort, sleep } from '../util/time.js';
import { exitSignalOf, type ManagedChild, type SpawnOptions } from './child.js';
import { stopChild } from './stop.js';
import { RAY_INSTALL_FIX, spawnFailure } from './spawn-failure.js';

/** What `ray status` says about the cluster: live nodes and total GPUs. */
export interface RayCluster {
  nodes: number;
  gpus: number;
}

const POLL_MS = 500;

/**
 * Reads `ray status` text: the node lines (` COUNT TYPE`: ` 1 node_<id>` for each node started by hand, as
 * llmserve starts them) under `Active:` and `Idle:` (autoscaler v2 lists idle nodes apart; older releases said
 * `Healthy:`), and the total of `USED/TOTAL GPU` under Resources (`Usage:`, `Total Usage:` in newer releases; a
 * placement-group note may follow the figures). Null when it is not that report.
 */
export function parseRayStatus(text: string): RayCluster | null {
  let section: string | null = null;
  let nodes = 0;
  let sawNodeStatus = false;
  let gpus = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (/^Node status$/.test(line)) sawNodeStatus = true;
    if (/^[A-Z][A-Za-z ]*:$/.test(line)) {
      section = line.slice(0, -1);
      continue;
    }
    const counted = section === 'Active' || section === 'Idle' || section === 'Healthy' ? /^(\d+)\s+\S/.exec(line) : null;
    if (counted) nodes += Number(counted[1]);
    const gpu = /^[\d.]+\/([\d.]+)\s+GPU(\s|$)/.exec(line);
    if (gpu) gpus = Math.max(gpus, Number(gpu[1]));
  }
  return sawNodeStatus ? { nodes, gpus } : null;
}

/** One `ray status`: whether Ray answered (exit 0), the cluster when its text could be read, and that text. */
export interface RayStatusResult {
  answers: boolean;
  cluster: RayCluster | null;
  /** stdout, or stderr when it failed, trimmed: shown when the cluster could not be read. */
  raw: string;
}

/** Runs `ray status` once; `signal` stops it (with a stop or kill, as the supervisor's other queries). */
export async function rayStatusOnce(run: RunCommand, argv: readonly string[], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<RayStatusResult> {
  const [file, ...args] = argv as [string, ...string[]];
  const result = await run(file, args, { timeoutMs: 15_000, env, ...(signal === undefined ? {} : { signal }) });
  const answers = result.exitCode === 0;
  return { answers, cluster: answers ? parseRayStatus(result.stdout) : null, raw: (answers ? result.stdout : result.stderr || result.stdout).trim() };
}


/** Spawns a `ray start ... --block` in its own process group, with its lines under the `ray` source. */
export async function spawnRay(spawn: (o: SpawnOptions) => Promise<ManagedChild>, argv: readonly string[], env: NodeJS.ProcessEnv, logger: Logger, onLine?: (line: string) => void): Promise<ManagedChild> {
  const [file, ...args] = argv as [string, ...string[]];
  return spawn({
    file,
    args,
    env,
    onLine: (line, stream) => {
      onLine?.(line);
      logger.child('ray', line, stream);
    },
  }).catch((err: NodeJS.ErrnoException) => {
    throw spawnFailure(file, err, RAY_INSTALL_FIX);
  });
}

/** Waits until `ray status` shows `nodes` nodes and `nodes * gpusPerNode` GPUs; throws on the head's exit or the timeout. */
export async function waitForCluster(opts: {
  run: RunCommand;
  statusArgv: readonly string[];
  env: NodeJS.ProcessEnv;
  head: ManagedChild;
  nodes: number;
  gpusPerNode: number;
  timeoutS: number;
  now: () => number;
  logger: Logger;
  stop: AbortSignal;
}): Promise<'ready' | 'stopped'> {
  const { logger, nodes, gpusPerNode } = opts;
  const needGpus = nodes * gpusPerNode;
  const deadline = opts.now() + opts.timeoutS * 1000;
  logger.info(`waiting for ${nodes} Ray nodes (this one included) with ${gpusPerNode} GPU(s) each`);
  let last = '';
  for (;;) {
    if (opts.stop.aborted) return 'stopped';
    if (opts.head.hasExited) throw rayHeadLostAtStart(await opts.head.exited);
    const status = await rayStatusOnce(opts.run, opts.statusArgv, opts.env, opts.stop);
    if (opts.stop.aborted) return 'stopped';
    const cluster = status.cluster;
    // Output Ray printed but llmserve cannot read is reported with its text, not taken for silence.
    const progress =
      cluster !== null
        ? `${cluster.nodes} of ${nodes} nodes joined, ${cluster.gpus} of ${needGpus} GPUs`
        : status.answers
          ? `ray status output not understood: ${JSON.stringify(status.raw.slice(0, 300))}`
          : `Ray is not answering yet${status.raw ? ` (${JSON.stringify(status.raw.split('\n').slice(-1)[0]?.slice(0, 200) ?? '')})` : ''}`;
    if (progress !== last) logger.info(`Ray cluster: ${progress}`);
    last = progress;
    if (cluster !== null && cluster.nodes >= nodes && cluster.gpus >= needGpus) return 'ready';
    if (opts.now() > deadline) {
      // Every node there but GPUs short: a node sees fewer GPUs than the head (each must have as many), not a missing node.
      if (cluster !== null && cluster.nodes >= nodes) {
        throw new LlmserveError('STARTUP_TIMEOUT', `the Ray cluster did not reach ${needGpus} GPUs within the start-up timeout (${formatSeconds(opts.timeoutS)}): ${progress}`, {
          details: [`Fix: every node must show Ray as many GPUs as this head (${opts.gpusPerNode}): check the workers' CUDA_VISIBLE_DEVICES and their pods' GPU limits (nvidia.com/gpu).`],
        });
      }
      throw new LlmserveError('STARTUP_TIMEOUT', `the Ray cluster did not reach ${nodes} nodes within the start-up timeout (${formatSeconds(opts.timeoutS)}): ${progress}`, {
        details: ['Fix: start the other nodes with `llmserve start --role worker --head ADDRESS` (ADDRESS = this node, port 6379), and check that they can reach it.'],
      });
    }
    await raceAbort(sleep(POLL_MS, opts.stop), { exited: exitSignalOf(opts.head) });
  }
}

/** A clean Ray stop: `ray stop` (which ends the blocking `ray start`), then the usual SIGTERM/SIGKILL of its group. */
export async function stopRay(child: ManagedChild, run: RunCommand | undefined, stopArgv: readonly string[], env: NodeJS.ProcessEnv, graceMs: number, killNow: AbortSignal): Promise<void> {
  if (!child.hasExited && run !== undefined && !killNow.aborted) {
    const [file, ...args] = stopArgv as [string, ...string[]];
    // Why a timer of our own: the run's timeout kills `ray stop`, but the run then waits for its output pipes, which a
    // process it left behind (a wrapper script's child) keeps open. The grace period must bound this step, and a
    // second signal (killNow) must cut it short.
    const waited = new AbortController();
    const onKill = () => waited.abort();
    killNow.addEventListener('abort', onKill, { once: true });
    try {
      // The same signal cancels the run: a `ray stop` still going when the wait ends is SIGKILLed, so it does not
      // outlive llmserve. Ray's processes it had yet to stop are in the head's group, which stopChild ends next.
      await Promise.race([run(file, args, { timeoutMs: graceMs, env, signal: waited.signal }), child.exited, sleep(graceMs, waited.signal)]);
    } finally {
      waited.abort();
      killNow.removeEventListener('abort', onKill);
    }
  }
  await stopChild(child, graceMs, killNow);
}

/** The error for a Ray head that exited before the service was ever ready (exit 3, as a vLLM that fails to start). */
export function rayHeadLostAtStart(exit: { code: number | null; signal: NodeJS.Signals | null }): LlmserveError {
  return new LlmserveError('STARTUP_FAILED', `the Ray head exited during start-up (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`})`, {
    details: ['Fix: see the ray lines above; another Ray instance on this machine (ray stop) or a busy port 6379 are common causes.'],
  });
}
