// `llmserve start`: resolve everything, then hand vLLM and the proxy to the supervisor until a signal.
import { readFile } from 'node:fs/promises';
import { loadConfig, type CliOptions, type Config } from '../config/index.js';
import { LlmserveError } from '../errors.js';
import { createLogger, wantsColor, type Logger } from '../log.js';
import { makePlan, type Plan } from '../plan.js';
import { formatArgv, BACKEND_HOST } from '../engine/command.js';
import { COMPUTE_APPS_QUERY_ARGS, parseComputeApps } from '../gpu/nvidia-smi.js';
import { prepareProbeDir, probeFiles } from '../probes/files.js';
import { httpGet } from '../probes/http-check.js';
import { spawnInGroup } from '../supervisor/child.js';
import { DEFAULT_RESTART } from '../supervisor/restart-policy.js';
import { removeRuntimeFile, writeRuntimeFile } from '../supervisor/runtime-file.js';
import { Supervisor } from '../supervisor/supervisor.js';
import type { SupervisorPlan } from '../supervisor/types.js';
import { onEmergency } from '../util/emergency.js';
import { isPortFree } from '../util/port.js';
import { runCommand } from '../util/run.js';

/** Options of `start` beyond the shared configuration flags. */
export interface StartOptions extends CliOptions {
  verbose?: boolean;
}

/** Runs `llmserve start`; resolves to the exit code (0 after a signal, 1 when the service was lost). */
export async function runStart(options: StartOptions, proc: NodeJS.Process = process): Promise<number> {
  const config = await loadConfig(options);
  const logger = createLogger({ format: config.log.format, verbose: options.verbose ?? false });
  for (const secret of config.secrets.values) logger.redact(secret);
  for (const note of config.notes) logger.warn(note);
  if (proc.pid === 1) {
    logger.warn('running as PID 1: orphaned grandchildren cannot be reaped and a SIGKILL of llmserve leaves its children running. Use tini (or docker run --init) as the entrypoint.');
  }

  const plan = await makePlan(config, { run: runCommand, env: proc.env });
  describePlan(plan, logger);
  const problem = plan.problems[0];
  if (problem) throw problem;
  await checkTlsFiles(config);
  if (!(await isPortFree(config.vllm.port, BACKEND_HOST))) {
    throw new LlmserveError('PORT_IN_USE', `backend port ${BACKEND_HOST}:${config.vllm.port} is already in use`, {
      details: ['Fix: stop what holds it, or choose another with --backend-port N (vllm.port).'],
    });
  }
  const probeDir = await prepareProbeDir(config.probes.dir, config.probes.dirExplicit, (m) => logger.warn(m));
  const probes = probeFiles(probeDir);
  logger.info(`probe files in ${probeDir}`);

  const supervisor = new Supervisor(supervisorPlan(config, plan, proc), {
    logger,
    probes,
    spawn: spawnInGroup,
    httpGet,
    isPortFree,
    gpuMemoryHolders: () => gpuMemoryHolders(),
    now: () => performance.now(),
  });

  // Signals are handled here, not at module level: the supervisor decides the order of stopping.
  const onTerm = () => supervisor.requestStop('SIGTERM');
  const onInt = () => supervisor.requestStop('SIGINT');
  const onHup = () => supervisor.reloadKeys();
  proc.on('SIGTERM', onTerm);
  proc.on('SIGINT', onInt);
  proc.on('SIGHUP', onHup);
  const unregister = onEmergency(() => supervisor.killAllNow());
  writeRuntimeFile(probeDir, {
    pid: proc.pid,
    startedAt: new Date().toISOString(),
    proxy: { host: config.proxy.host, port: config.proxy.port, tls: config.proxy.tls !== null },
    backend: { host: BACKEND_HOST, port: config.vllm.port },
    models: [config.servedModelName],
  });
  try {
    return await supervisor.run();
  } finally {
    unregister();
    removeRuntimeFile(probeDir, proc.pid);
    proc.off('SIGTERM', onTerm);
    proc.off('SIGINT', onInt);
    proc.off('SIGHUP', onHup);
  }
}

/** Builds what the supervisor runs from the configuration and the plan. */
function supervisorPlan(config: Config, plan: Plan, proc: NodeJS.Process): SupervisorPlan {
  const scheme = config.proxy.tls ? 'https' : 'http';
  const localHost = config.proxy.host === '0.0.0.0' || config.proxy.host === '::' ? '127.0.0.1' : config.proxy.host;
  const extra = config.extra as { stall_timeout?: unknown; drain?: { delay?: unknown; timeout?: unknown }; restart?: unknown };
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && v >= 0 ? v : fallback);
  return {
    vllm: { argv: plan.argv, env: plan.env, port: config.vllm.port, servedModelName: config.servedModelName },
    proxy: {
      // The proxy is this same program's internal `proxy` command, run by the same Node binary.
      file: proc.execPath,
      args: [proc.argv[1] ?? 'llmserve', 'proxy'],
      env: proxyEnv(config, proc.env),
      publicUrl: `${scheme}://${localHost.includes(':') ? `[${localHost}]` : localHost}:${config.proxy.port}`,
      insecureTls: true,
      settings: {
        host: config.proxy.host,
        port: config.proxy.port,
        backendUrl: `http://${BACKEND_HOST}:${config.vllm.port}`,
        servedModelName: config.servedModelName,
        auth: config.proxy.auth,
        keys: config.proxy.keys.filter((k) => !k.fromKeysFile).map((k) => ({ name: k.name, sha256Hex: k.sha256.toString('hex') })),
        keysFile: config.proxy.keysFile,
        routes: config.proxy.routes,
        modelAliases: config.proxy.modelAliases,
        maxBodyBytes: config.proxy.maxBodyBytes,
        firstByteTimeout: config.proxy.firstByteTimeout,
        headersTimeout: config.proxy.headersTimeout,
        bodyTimeout: config.proxy.bodyTimeout,
        tls: config.proxy.tls,
        logHealth: config.proxy.logHealth,
        logFormat: config.log.format,
        color: wantsColor(process.stdout, proc.env),
      },
    },
    healthInterval: config.probes.interval,
    startupTimeout: config.timeouts.startup,
    stallTimeout: num(extra.stall_timeout, 600),
    stopTimeout: config.timeouts.stop,
    drainDelay: num(extra.drain?.delay, 0),
    drainTimeout: num(extra.drain?.timeout, 30),
    restart: { ...DEFAULT_RESTART, policy: extra.restart === 'never' ? 'never' : 'on-failure' },
  };
}

/** The proxy's environment: without key variables (its keys arrive over IPC). */
function proxyEnv(config: Config, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of config.secrets.envNames) delete out[name];
  return out;
}

/** Prints what llmserve found and is about to run. */
function describePlan(plan: Plan, logger: Logger): void {
  const { selection, inventory, tensorParallel } = plan;
  if (inventory && selection) {
    const list = selection.gpus.map((g) => `${g.index}: ${g.name}${g.memoryMiB ? ` (${Math.round(g.memoryMiB / 1024)} GiB)` : ''}`).join(', ');
    const cvd = selection.cudaVisibleDevices !== null ? ` (CUDA_VISIBLE_DEVICES=${selection.cudaVisibleDevices})` : '';
    logger.info(`GPUs${cvd}: ${selection.gpus.length === 0 ? 'none' : list} [from ${inventory.source}]`);
  }
  for (const w of plan.warnings) logger.warn(w);
  if (tensorParallel) logger.info(`tensor-parallel size ${tensorParallel.size}: ${tensorParallel.reason}`);
  logger.info(`vLLM command: ${formatArgv(plan.argv)}`);
}

/** Reads the TLS certificate and key once, so a bad path is a start-up error (exit 2), not a proxy crash. */
async function checkTlsFiles(config: Config): Promise<void> {
  const tls = config.proxy.tls;
  if (!tls) return;
  for (const [what, file] of [['proxy.tls.cert', tls.cert], ['proxy.tls.key', tls.key]] as const) {
    await readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new LlmserveError('TLS', `${what}: cannot read ${file}: ${err.code ?? err.message}`, {
        details: ['Fix: point proxy.tls.cert / proxy.tls.key at readable PEM files.'],
      });
    });
  }
}

/** Pids holding GPU memory according to nvidia-smi; null when it is not available. */
async function gpuMemoryHolders(): Promise<number[] | null> {
  const result = await runCommand('nvidia-smi', COMPUTE_APPS_QUERY_ARGS, { timeoutMs: 5000 });
  if (result.notFound || result.exitCode !== 0) return null;
  return parseComputeApps(result.stdout).map((a) => a.pid);
}
