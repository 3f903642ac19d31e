// `llmserve start --role worker --head ADDRESS`: this node only lends its GPUs to the head's Ray cluster.
import type { Config } from '../config/types.js';
import { BACKEND_HOST, buildVllmEnv } from '../engine/command.js';
import { rayStartArgv } from '../engine/ray-command.js';
import type { Logger } from '../log.js';
import { NOT_READY, prepareProbeDir, probeFiles } from '../probes/files.js';
import { spawnInGroup } from '../supervisor/child.js';
import { startOrphanGuard } from '../supervisor/orphan-guard.js';
import { RayWorker } from '../supervisor/ray-worker.js';
import { claimProbeDir, refuseOwnedProbeDir, releaseProbeDir } from '../supervisor/probe-dir-claim.js';
import { RAY_INSTALL_FIX } from '../supervisor/spawn-failure.js';
import { onEmergency } from '../util/emergency.js';
import { onOutputClosed } from '../util/output.js';
import { runCommand } from '../util/run.js';
import type { StartupSignals } from '../util/startup-signals.js';
import { checkCommandRunnable } from './start-checks.js';

/**
 * Runs the worker until a signal (0) or an exhausted restart budget (1). `early` holds start-up's signal handlers
 * until the worker's own are installed: a signal meanwhile stops it with both probe files present, exit 0.
 */
export async function runWorker(config: Config, logger: Logger, proc: NodeJS.Process, early: StartupSignals, onHangup: () => void = () => {}): Promise<number> {
  const probeDir = await prepareProbeDir(config.probes.dir, config.probes.dirExplicit, (m) => logger.warn(m));
  // As start does, before any probe file is touched: a second worker (or start) run by hand on a running one's
  // directory would mark it down, and its files would stay so (a worker rewrites a file only when its state changes).
  refuseOwnedProbeDir(probeDir, proc.pid);
  // As start: `not-ready` first thing, and from here on every exit leaves both probe files present, a `ray` that
  // cannot run included (an empty probe directory reads as a worker that is ready and healthy).
  const probes = probeFiles(probeDir, logger);
  probes.set(NOT_READY, true);
  logger.info(`probe files in ${probeDir}`);
  const stoppedEarly = (): number => {
    probes.markDown();
    logger.info(`${early.received} received during start-up: stopping before anything is started`);
    early.dispose();
    return 0;
  };
  if (early.received !== null) return stoppedEarly();
  const head = config.cluster.head!;
  const ray = config.ray.command;
  // Ray's workers run vLLM's processes: they get vLLM's environment (keys removed, VLLM_PORT dropped).
  const env = buildVllmEnv(config, proc.env);
  let guard: Awaited<ReturnType<typeof startOrphanGuard>>;
  try {
    // As start checks vLLM's: a `ray` that cannot run (a moved virtualenv's script) is named as such, exit 2.
    checkCommandRunnable(ray[0]!, env, RAY_INSTALL_FIX);
    // A SIGKILL of llmserve cannot be caught: the guard, a process of its own, then stops Ray's group.
    guard = await startOrphanGuard(config.timeouts.stop * 1000, probeDir, env, logger);
  } catch (err) {
    probes.markDown();
    throw err;
  }
  if (early.received !== null) {
    await guard.release();
    return stoppedEarly();
  }
  const worker = new RayWorker(
    {
      head,
      argv: rayStartArgv(config)!,
      statusArgv: [...ray, 'status', `--address=${head}`],
      stopArgv: [...ray, 'stop'],
      env,
      healthInterval: config.probes.interval,
      startupTimeout: config.timeouts.startup,
      stopTimeout: config.timeouts.stop,
      headDrainS: config.drain.delay + config.drain.timeout,
      restart: { ...config.restart },
    },
    { logger, probes, spawn: guard.wrap(spawnInGroup), run: runCommand, now: () => performance.now() },
  );
  // Marks the directory as this worker's (for a second start, and for `check`, which then judges the probe files).
  const claim = claimProbeDir(probeDir, proc.pid, { role: 'worker', head, proxy: { host: config.proxy.host, port: config.proxy.port, tls: false }, backend: { host: BACKEND_HOST, port: config.vllm.port }, models: [] }, logger, 'a second start on this directory goes undetected', config.probes.interval);
  const onTerm = () => worker.requestStop('SIGTERM');
  const onInt = () => worker.requestStop('SIGINT');
  // SIGHUP reloads keys on the head; a worker has none. Without a listener Node would die of it and leave Ray running.
  const onHup = () => {
    onHangup();
    logger.info('SIGHUP received: a worker has no keys to reload');
  };
  proc.on('SIGTERM', onTerm);
  proc.on('SIGINT', onInt);
  proc.on('SIGHUP', onHup);
  // Only now: no await since the last check of `early.received`, so no signal fell between the two sets of handlers.
  early.dispose();
  const offOutput = onOutputClosed((code) => worker.requestStop(`the output closed (${code})`));
  const unregister = onEmergency(() => worker.killAllNow());
  try {
    return await worker.run();
  } finally {
    claim.stop();
    await guard.release();
    unregister();
    offOutput();
    releaseProbeDir(probeDir, proc.pid, logger);
    proc.off('SIGTERM', onTerm);
    proc.off('SIGINT', onInt);
    proc.off('SIGHUP', onHup);
  }
}
