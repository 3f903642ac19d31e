// `llmserve start`: resolve everything, then hand vLLM and the proxy to the supervisor until a signal.
import { loadConfig, readKeysFile, type CliOptions, type Config, type KeyEntry } from '../config/index.js';
import { createLogger, wantsColor, type ErrorReporter, type Logger } from '../log.js';
import { createProgress } from '../progress.js';
import { makePlan, type Plan } from '../plan.js';
import { checkCommandsRunnable, checkPortsFree, checkTlsFiles } from './start-checks.js';
import { lowOpenFileLimitWarning, ownOpenFileLimit } from '../util/open-files.js';
import { gpuMemoryHolders } from '../gpu/memory-holders.js';
import { addsAccessLogFlag, buildVllmEnv, formatArgv, withoutKeyVariables, BACKEND_HOST, DISABLE_ACCESS_LOG_FLAG } from '../engine/command.js';
import { allowedOrigins } from '../engine/cors-args.js';
import { loraModuleNames, withLoraNames } from '../engine/lora-args.js';
import { rayStartArgv } from '../engine/ray-command.js';
import { REMOVED_FLAGS_NOW_DEFAULT } from '../engine/diagnose.js';
import { gpuSourceText } from '../gpu/detect.js';
import { gpuLabel } from '../gpu/assign.js';
import { NOT_READY, prepareProbeDir, probeFiles, type ProbeFiles } from '../probes/files.js';
import { httpGet } from '../probes/http-check.js';
import { spawnInGroup } from '../supervisor/child.js';
import { startOrphanGuard } from '../supervisor/orphan-guard.js';
import { describePortHolder, findPortHolder, otherListeners } from '../supervisor/port-holder.js';
import { SHUTDOWN_TIMEOUT_FLAG, withShutdownTimeout } from '../supervisor/shutdown-timeout.js';
import { claimProbeDir, refuseOwnedProbeDir, releaseProbeDir } from '../supervisor/probe-dir-claim.js';
import { Supervisor } from '../supervisor/supervisor.js';
import type { SupervisorPlan } from '../supervisor/types.js';
import { onEmergency } from '../util/emergency.js';
import { onOutputClosed, onOutputFailed, outputFailedWarning } from '../util/output.js';
import { isPortFree } from '../util/port.js';
import { runCommand } from '../util/run.js';
import { catchStartupSignals, type StartupSignals } from '../util/startup-signals.js';
import { proxyNodeFlags } from '../proxy/node-flags.js';
import { upstreamIdleMs } from '../proxy/upstream/idle.js';
import type { KeyEntryDigest } from '../proxy/settings.js';
import { openLogFile } from './log-file.js';
import { runWorker } from './worker.js';

/** Options of `start` beyond the shared configuration flags. */
export interface StartOptions extends CliOptions {
  verbose?: boolean;
  /** --log-file: every line is appended there too, vLLM's hidden ones included. */
  logFile?: string;
  /** Where logFile came from, for its error (`--log-file`, or `LLMSERVE_LOG_FILE`). */
  logFileFrom?: string;
  /** Where main.ts prints the final error: handed the log file, then this command's logger, so they get it too. */
  errors?: ErrorReporter;
}

/** Runs `llmserve start`; resolves to the exit code (0 after a signal, 1 when the service was lost). */
export async function runStart(options: StartOptions, proc: NodeJS.Process = process): Promise<number> {
  // Signals are caught from the first instant: Node's default would end llmserve by the signal (a SIGHUP too) while
  // the config is read. The probe files and the logger exist only later: the handler uses them once they do.
  let probes: ProbeFiles | null = null;
  let logger: Logger | null = null;
  // SIGHUP reopens the log file from the moment it is open: a logrotate run during a slow start-up (a GPU query that
  // hangs) otherwise left every line of the start going into the renamed file.
  let reopenLog: () => void = () => {};
  const early = catchStartupSignals(
    proc,
    (name) => {
      // Before the probe files exist, start-up itself stops (and says so) as soon as they do.
      if (probes === null) return;
      probes.markDown();
      logger?.info(`${name} received during start-up: stopping before anything is started`);
    },
    () => reopenLog(),
  );
  // Output with no room (`> llmserve.log` on a full disk) is said and served through; only a reader that is gone
  // (a closed terminal or pipe) stops the service, below. A --role worker too. Said on the other stream: a warning
  // about stderr written to stderr would be lost with it.
  const offFailed = onOutputFailed((code, stream) => logger?.warnTo(stream === 'stderr' ? 'stdout' : 'stderr', outputFailedWarning(code, stream)));
  try {
    return await startWithSignals(options, proc, early, {
      probesReady: (p) => (probes = p),
      loggerReady: (l) => (logger = l),
      reopenReady: (reopen) => (reopenLog = reopen),
    });
  } finally {
    early.dispose();
    offFailed();
  }
}

/** `start` once its start-up signal handlers exist; `seen` hands the handler the probe files and the logger. */
async function startWithSignals(
  options: StartOptions,
  proc: NodeJS.Process,
  early: StartupSignals,
  seen: { probesReady(p: ProbeFiles): void; loggerReady(l: Logger): void; reopenReady(reopen: () => void): void },
): Promise<number> {
  const { errors } = options;
  // A write that fails later (a full disk) is reported through whichever logger prints at that moment.
  const logFile = options.logFile ? openLogFile(options.logFile, (msg) => (errors ? errors.logger.warn(msg) : void process.stderr.write(`${msg}\n`)), options.logFileFrom) : null;
  // A configuration error reaches the log file too, in the format known before the config (flag or environment).
  if (logFile && errors) errors.use(createLogger({ format: errors.logger.format, tee: logFile }));
  const config = await loadConfig(options);
  const logger = createLogger({ format: config.log.format, verbose: options.verbose ?? false, ...(logFile ? { tee: logFile } : {}) });
  seen.loggerReady(logger);
  errors?.use(logger);
  for (const secret of config.secrets.values) logger.redact(secret);
  for (const note of config.notes) logger.warn(note);
  if (proc.pid === 1) {
    // Why: PID 1 is its PID namespace's init, and the kernel hands it every orphan in the container to reap; Node
    // reaps only its own children. (Its death, as tini's child's, ends the namespace: the kernel kills the rest.)
    logger.warn('running as PID 1: orphaned processes in the container are handed to llmserve, which does not reap them (they stay zombies). Use tini (or docker run --init) as the entrypoint.');
  }

  // The worker takes start-up's handlers over until its own are installed.
  // SIGHUP also reopens the log file (rotated by renaming it), on a worker too.
  const reopenLog = () => {
    const why = logFile?.reopen() ?? null;
    if (why !== null) logger.warn(`SIGHUP: cannot reopen the log file ${options.logFile} (${why}); lines still go to the one open before`);
  };
  seen.reopenReady(reopenLog);
  if (config.cluster.role === 'worker') return runWorker(config, logger, proc, early, reopenLog);

  // `not-ready` comes first, before GPU discovery and the other checks: the platform must see it within a second
  // of the container starting. From here on every exit leaves both probe files present.
  const probeDir = await prepareProbeDir(config.probes.dir, config.probes.dirExplicit, (m) => logger.warn(m));
  // Before any probe file is touched: a second `start` on the same directory (run by hand in a serving pod, say)
  // would mark the running service not-ready, and not-healthy at its own exit, and the platform would restart it.
  refuseOwnedProbeDir(probeDir, proc.pid);
  const probes = probeFiles(probeDir, logger);
  probes.set(NOT_READY, true);
  seen.probesReady(probes);
  logger.info(`probe files in ${probeDir}`);
  // A signal while the config was read: its probe files now exist, both present, as at every exit.
  if (early.received !== null) {
    probes.markDown();
    logger.info(`${early.received} received during start-up: stopping before anything is started`);
    return stoppedDuringStartup(early);
  }
  let plan: Plan;
  let supervised: SupervisorPlan;
  try {
    // The start-up's external programs stop with a signal, so that nothing outlives llmserve.
    const run: typeof runCommand = (file, args, options) => runCommand(file, args, { ...options, signal: early.abort });
    // Why the race: a nvidia-smi stuck on a wedged driver (uninterruptible sleep) survives even SIGKILL, and the
    // query would never return; after a signal, 2 s for it to end, then stop without it.
    const planned = await Promise.race([makePlan(config, { run, env: proc.env }), early.settled(STARTUP_SIGNAL_GRACE_MS).then(() => null)]);
    if (planned === null || early.received !== null) return stoppedDuringStartup(early);
    plan = planned;
    supervised = supervisorPlan(config, plan, proc);
    describePlan(plan, supervised.backends.map((b) => b.argv), logger);
    const problem = plan.problems[0];
    if (problem) throw problem;
    checkCommandsRunnable(supervised);
    await checkTlsFiles(config);
    await checkPortsFree(config);
    const lowFiles = lowOpenFileLimitWarning(ownOpenFileLimit());
    if (lowFiles !== null) logger.warn(lowFiles);
    if (early.received !== null) return stoppedDuringStartup(early);
  } catch (err) {
    probes.markDown();
    if (early.received !== null) return stoppedDuringStartup(early);
    early.dispose();
    throw err;
  }

  // A SIGKILL of llmserve cannot be caught: the guard, a process of its own, then stops what llmserve started. It
  // gets vLLM's environment, which holds no key.
  const guard = await startOrphanGuard(config.timeouts.stop * 1000, probeDir, buildVllmEnv(config, proc.env), logger);
  // A signal while the guard started (an await): nothing runs yet, so stop here as during the checks above.
  if (early.received !== null) {
    await guard.release();
    return stoppedDuringStartup(early);
  }
  const supervisor = new Supervisor(supervised, {
    logger,
    probes,
    spawn: guard.wrap(spawnInGroup),
    httpGet,
    isPortFree,
    gpuMemoryHolders: (signal) => gpuMemoryHolders(withoutKeyVariables(proc.env, config.secrets.envNames), signal),
    keysFileSecrets: (file) => readKeysFile(file).then((loaded) => ({ envNames: loaded.envNames, values: loaded.values }), () => ({ envNames: [], values: [] })),
    now: () => performance.now(),
    describePortHolder: (port) => describePortHolder(findPortHolder(port)),
    otherListeners: (port, pids) => {
      const found = otherListeners(port, pids);
      return found === null ? null : { count: found.count, holder: describePortHolder(found.holder) };
    },
    run: runCommand,
    // A live status line only for one model on a terminal in text mode; otherwise one line per phase.
    startProgress: (label) =>
      createProgress({
        logger,
        label,
        tty: proc.stdout.isTTY === true && config.log.format === 'text' && supervised.backends.length === 1,
        verbose: options.verbose ?? false,
        now: () => performance.now(),
      }),
  });

  // Signals are handled here, not at module level: the supervisor decides the order of stopping.
  const onTerm = () => supervisor.requestStop('SIGTERM');
  const onInt = () => supervisor.requestStop('SIGINT');
  const onHup = () => {
    reopenLog();
    supervisor.reloadKeys();
  };
  proc.on('SIGTERM', onTerm);
  proc.on('SIGINT', onInt);
  proc.on('SIGHUP', onHup);
  // Only now: no await since the last check of `early.received`, so no signal fell between the two sets of handlers.
  early.dispose();
  // A closed terminal sends SIGHUP (a key reload, harmless), then every write fails: stop as on SIGTERM, so that
  // closing the terminal does not leave vLLM holding the GPUs.
  const offOutput = onOutputClosed((code) => supervisor.requestStop(`the output closed (${code})`));
  const unregister = onEmergency(() => supervisor.killAllNow());
  const claim = claimProbeDir(
    probeDir,
    proc.pid,
    {
      proxy: { host: config.proxy.host, port: config.proxy.port, tls: config.proxy.tls !== null },
      backend: { host: BACKEND_HOST, port: config.vllm.port },
      models: config.models.map((m) => m.servedModelName),
      backends: config.models.map((m) => ({ model: m.servedModelName, host: BACKEND_HOST, port: m.port })),
      require: config.probes.require,
    },
    logger,
    '`llmserve check` will not know ports given only on this command line, and a second start on this directory goes undetected',
    config.probes.interval,
  );
  try {
    return await supervisor.run();
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

/** How long a start-up signal waits for the external program in flight to end. */
const STARTUP_SIGNAL_GRACE_MS = 2000;

/** A signal came before anything was started: the probe files are already down; exit 0 as after any signal. */
function stoppedDuringStartup(early: StartupSignals): number {
  early.dispose();
  return 0;
}

/** Builds what the supervisor runs from the configuration and the plan. */
function supervisorPlan(config: Config, plan: Plan, proc: NodeJS.Process): SupervisorPlan {
  const scheme = config.proxy.tls ? 'https' : 'http';
  const localHost = config.proxy.host === '0.0.0.0' || config.proxy.host === '::' ? '127.0.0.1' : config.proxy.host;
  const several = plan.models.length > 1;
  const backends = plan.models.map((m) => {
    // vLLM drains too on SIGTERM when it knows --shutdown-timeout; an older one rejects it and the supervisor drops it.
    const shutdown = withShutdownTimeout(m.argv, config.timeouts.stop);
    return {
      argv: shutdown.argv,
      env: m.env,
      port: m.config.port,
      servedModelName: m.config.servedModelName,
      logName: several ? `vllm:${m.config.servedModelName}` : 'vllm',
      summary: backendSummary(m),
      droppableFlags: [...REMOVED_FLAGS_NOW_DEFAULT, ...(shutdown.added ? [SHUTDOWN_TIMEOUT_FLAG] : []), ...(addsAccessLogFlag(config, m.config.args) ? [DISABLE_ACCESS_LOG_FLAG] : [])],
    };
  });
  const ray = config.ray.command;
  return {
    backends,
    require: config.probes.require,
    ...(config.cluster.role === 'head'
      ? {
          ray: {
            argv: rayStartArgv(config)!,
            env: plan.env,
            statusArgv: [...ray, 'status'],
            stopArgv: [...ray, 'stop'],
            nodes: config.cluster.nodes,
            gpusPerNode: plan.selection?.gpus.length ?? plan.tensorParallel?.size ?? 1,
          },
        }
      : {}),
    proxy: {
      // The proxy is this same program's internal `proxy` command, run by the same Node binary (with a fixed young
      // generation: node-flags.ts); its cluster workers inherit those flags.
      file: proc.execPath,
      args: [...proxyNodeFlags(proc.execArgv, proc.env.NODE_OPTIONS), proc.argv[1] ?? 'llmserve', 'proxy'],
      env: proxyEnv(config, proc.env),
      port: config.proxy.port,
      publicUrl: `${scheme}://${localHost.includes(':') ? `[${localHost}]` : localHost}:${config.proxy.port}`,
      insecureTls: true,
      keysFile: config.proxy.keysFile,
      tlsCert: config.proxy.tls?.cert ?? null,
      settings: {
        host: config.proxy.host,
        port: config.proxy.port,
        backendUrl: `http://${BACKEND_HOST}:${config.vllm.port}`,
        servedModelName: config.servedModelName,
        // Several models: the proxy routes by the request's model to each one's vLLM.
        // Each one's LoRA adapters (--lora-modules in its vLLM's arguments) are routed to it by name.
        ...(several ? { backends: config.models.map((m, i) => ({ name: m.servedModelName, url: `http://${BACKEND_HOST}:${m.port}`, loras: loraModuleNames(plan.models[i]!.argv) })), require: config.probes.require } : {}),
        loraNames: plan.models.flatMap((m) => loraModuleNames(m.argv)),
        auth: config.proxy.auth,
        keys: config.proxy.keys.filter((k) => !k.fromKeysFile).map(keyDigest),
        // The file's keys as the config load read them: served by a proxy that finds the file broken at its start.
        fileKeys: config.proxy.keys.filter((k) => k.fromKeysFile).map(keyDigest),
        keysFile: config.proxy.keysFile,
        // vLLM's CORS policy, which the proxy's own answers follow (the first model's with several).
        corsOrigins: allowedOrigins(plan.argv) ?? [],
        routes: config.proxy.routes,
        // With aliases the proxy answers an unknown model's 404 itself: the LoRA adapters vLLM serves are known names
        // too (each as itself, as several models' served names are), so a request for one still reaches vLLM.
        modelAliases: withLoraNames(config.proxy.modelAliases, several ? [] : loraModuleNames(plan.argv)),
        maxBodyBytes: config.proxy.maxBodyBytes,
        firstByteTimeout: config.proxy.firstByteTimeout,
        headersTimeout: config.proxy.headersTimeout,
        bodyTimeout: config.proxy.bodyTimeout,
        keepAliveTimeout: config.proxy.keepAliveTimeout,
        tls: config.proxy.tls,
        logHealth: config.proxy.logHealth,
        usage: { dir: config.usage.dir, track: config.usage.track, flushInterval: config.usage.flushInterval },
        metricsPort: config.proxy.metricsPort,
        workers: config.proxy.workers,
        // Below each vLLM's keep-alive, which its environment may shorten: the pool must close an idle connection first.
        upstreamIdleMs: upstreamIdleMs(plan.models.map((m) => m.env.VLLM_HTTP_TIMEOUT_KEEP_ALIVE)),
        logFormat: config.log.format,
        color: wantsColor(process.stdout, proc.env),
      },
    },
    healthInterval: config.probes.interval,
    startupTimeout: config.timeouts.startup,
    stallTimeout: config.timeouts.stall,
    engineStallTimeout: config.timeouts.engineStall,
    stopTimeout: config.timeouts.stop,
    drainDelay: config.drain.delay,
    drainTimeout: config.drain.timeout,
    restart: { ...config.restart },
  };
}

/** A key as the proxy gets it: name, digest, limits; never the value. */
function keyDigest(k: KeyEntry): KeyEntryDigest {
  return { name: k.name, sha256Hex: k.sha256.toString('hex'), ...(k.policy === undefined ? {} : { policy: k.policy }) };
}

/** The proxy's environment: without key variables (its keys arrive over IPC), except those of the keys file. */
function proxyEnv(config: Config, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // The log format travels in the environment too, so that even the proxy's earliest lines (before its IPC
  // settings arrive) and Node's warnings in it are in the chosen format.
  const out: NodeJS.ProcessEnv = { ...env, LLMSERVE_LOG_FORMAT: config.log.format };
  // Why the keys file's variables stay: the proxy reads that file itself, at its start and on SIGHUP, and its
  // `os.environ/NAME` entries resolve in the proxy's environment; without them the whole file was refused.
  const kept = new Set(config.secrets.keysFileEnvNames);
  for (const name of config.secrets.envNames) if (!kept.has(name)) delete out[name];
  return out;
}

/** Prints what llmserve found and is about to run. */
function describePlan(plan: Plan, argvs: readonly string[][], logger: Logger): void {
  const { selection, inventory } = plan;
  if (inventory && selection) {
    const list = selection.gpus.map((g) => `${gpuLabel(g)}: ${g.name}${g.memoryMiB ? ` (${Math.round(g.memoryMiB / 1024)} GiB)` : ''}`).join(', ');
    const cvd = selection.cudaVisibleDevices !== null ? ` (CUDA_VISIBLE_DEVICES=${selection.cudaVisibleDevices})` : '';
    logger.info(`GPUs${cvd}: ${selection.gpus.length === 0 ? 'none' : list} [${gpuSourceText(inventory.source)}]`);
  }
  for (const w of plan.warnings) logger.warn(w);
  const several = plan.models.length > 1;
  plan.models.forEach((m, i) => {
    const who = several ? `model "${m.config.servedModelName}": ` : '';
    if (several) logger.info(`${who}GPUs ${m.gpus?.map(gpuLabel).join(', ') ?? 'unassigned'}, port ${m.config.port}`);
    if (m.tensorParallel) logger.info(`${who}tensor-parallel size ${m.tensorParallel.size}: ${m.tensorParallel.reason}`);
    if (m.pipelineParallelSize !== null) logger.info(`${who}pipeline-parallel size ${m.pipelineParallelSize}: one stage per node of the Ray cluster`);
    // A plan that a problem stops runs nothing: a command line printed just before the error would read as run.
    if (plan.problems.length === 0) logger.info(`${who}vLLM command: ${formatArgv(argvs[i] ?? m.argv)}`);
  });
}

/** One model's resources for the ready summary: its GPUs and tensor-parallel size. */
function backendSummary(m: Plan['models'][number]): string {
  const gpus = m.gpus === null ? 'GPUs unknown' : m.gpus.length === 0 ? 'no GPU' : `GPU${m.gpus.length === 1 ? '' : 's'} ${m.gpus.map(gpuLabel).join(',')} (${m.gpus[0]!.name})`;
  return `${gpus}, tensor-parallel size ${m.tensorParallel?.size ?? '?'}${m.pipelineParallelSize ? `, pipeline-parallel size ${m.pipelineParallelSize}` : ''}`;
}
