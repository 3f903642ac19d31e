// The `probe` report as data: the plan plus the machine facts, every problem with its fix, keys redacted.
import { formatArgv } from '../engine/command.js';
import { rayStartArgv } from '../engine/ray-command.js';
import type { Gpu } from '../gpu/types.js';
import type { ModelPlan, Plan } from '../plan.js';
import { TLS_FIX } from '../proxy/tls.js';
import { ownedProbeDir } from '../supervisor/runtime-file.js';
import { withShutdownTimeout } from '../supervisor/shutdown-timeout.js';
import { describeBindFailure } from '../util/bind-failure.js';
import { redactConfig, redactEnv, redactText } from './redact.js';
import type { PortFact, ProbeFacts, ProbeReport, ProblemEntry, WeightFit } from './types.js';

const MiB = 1024 * 1024;
/** Above this share of GPU memory, the weights leave too little room for the KV cache: a warning. */
const WEIGHT_SHARE_WARNING = 0.9;

/** Formats a byte count for people: `64 B`, `3.1 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** One problem as a single line: the message, then its fix. */
export function problemText(p: ProblemEntry): string {
  return [p.message, ...p.details].join(' ');
}

function portProblem(what: 'public' | 'backend' | 'metrics' | 'Ray head', fact: PortFact, fix: string): ProblemEntry | null {
  if (fact.free) return null;
  const failure = describeBindFailure({ what, host: fact.host, port: fact.port, portFix: fix }, fact.error ?? 'unknown error');
  return { code: failure.code, message: failure.message, details: [`Fix: ${failure.fix}`] };
}

/** The problems `start` would stop at that the plan does not cover: TLS files, ports (a Ray head's too), probe directory, vLLM or Ray missing. */
export function factProblems(plan: Plan, facts: ProbeFacts): ProblemEntry[] {
  const out: ProblemEntry[] = [];
  for (const [what, file, error] of facts.tlsUnreadable) {
    out.push({ code: 'TLS', message: `${what}: cannot read ${file}: ${error}`, details: ['Fix: point proxy.tls.cert / proxy.tls.key at readable PEM files.'] });
  }
  if (facts.tlsInvalid !== undefined) {
    out.push({ code: 'TLS', message: facts.tlsInvalid, details: [facts.tlsInvalidFix ?? TLS_FIX] });
  }
  // Each port is a port of its own here: the configuration refuses one port twice (exit 2, resolve.ts), so a busy
  // port is really held by something else, never by probe's own test of another of these ports.
  const proxy = portProblem('public', facts.proxyPort, 'choose another with --port N (proxy.port).');
  if (proxy) out.push(proxy);
  const ports = facts.backendPorts ?? [facts.backendPort];
  const several = ports.length > 1;
  ports.forEach((fact, i) => {
    const name = plan.models[i]?.config.servedModelName ?? '';
    const backend = portProblem('backend', fact, several ? `give model "${name}" another port: (models[].port).` : 'choose another with --backend-port N (vllm.port).');
    if (backend) out.push(backend);
  });
  const metrics = facts.metricsPort ? portProblem('metrics', facts.metricsPort, 'choose another with proxy.metrics_port.') : null;
  if (metrics) out.push(metrics);
  if (facts.rayPort) {
    const ray = portProblem('Ray head', facts.rayPort, 'run `ray stop` if it is a Ray left from an earlier run (the head always uses 6379).');
    if (ray) out.push(ray);
  }
  // start stops here too (commands/start.ts, and a worker in commands/worker.ts), before it touches the running one's probe files.
  if (facts.running?.owner) {
    const { message, fix } = ownedProbeDir(facts.probeDir.dir, facts.running.owner);
    out.push({ code: 'PROBE_DIR', message, details: [fix] });
  }
  if (!facts.probeDir.writable && facts.probeDir.explicit) {
    out.push({
      code: 'PROBE_DIR',
      message: `probe directory ${facts.probeDir.dir} is not writable: ${facts.probeDir.error ?? 'unknown error'}`,
      details: ['Fix: create it with write access for this user, or choose another with --probe-dir DIR (or probes.dir).'],
    });
  }
  // start opens its log file first of all, a worker's too (commands/log-file.ts); start's own code for it is USAGE.
  if (facts.logFileError !== undefined) out.push({ code: 'LOG_FILE', message: facts.logFileError, details: [] });
  if (facts.rayFound === false) {
    const command = plan.config.ray.command[0] ?? 'ray';
    out.push({
      code: 'RAY_NOT_FOUND',
      message: `the Ray command "${command}" ${facts.rayUnrunnable ? `cannot be run (${facts.rayUnrunnable})` : 'was not found'}`,
      details: ['Fix: install Ray (pip install "ray[default]") so that `ray` is on PATH, or set ray.command in the config file.'],
    });
  }
  if (!facts.vllm.found) {
    out.push({
      code: 'VLLM_NOT_FOUND',
      message: `the vLLM command "${facts.vllm.command}" ${facts.vllm.raw ? `cannot be run (${facts.vllm.raw})` : 'was not found'}`,
      details: ['Fix: install vLLM in this environment (pip install vllm) so that it is on PATH, or set vllm.command in the config file.'],
    });
  }
  return out;
}

/** Weights against the memory of the GPUs that load them; null fields when either is unknown. */
export function weightFit(weightBytes: number | null, gpus: readonly Gpu[] | null): WeightFit {
  const memories = (gpus ?? []).map((g) => g.memoryMiB);
  const gpuMemoryBytes = memories.length > 0 && memories.every((m) => m !== null) ? memories.reduce<number>((sum, m) => sum + (m ?? 0), 0) * MiB : null;
  const weightShare = weightBytes !== null && weightBytes > 0 && gpuMemoryBytes !== null && gpuMemoryBytes > 0 ? Math.round((weightBytes / gpuMemoryBytes) * 1000) / 1000 : null;
  return { weightBytes, gpuMemoryBytes, weightShare };
}

/** The warning for weights that leave too little room for the KV cache on their GPUs; null when they fit. */
function weightWarning({ weightBytes, gpuMemoryBytes, weightShare }: WeightFit): string | null {
  if (weightShare === null || weightShare <= WEIGHT_SHARE_WARNING || weightBytes === null || gpuMemoryBytes === null) return null;
  return `the weights (${formatBytes(weightBytes)}) take ${Math.round(weightShare * 100)}% of the GPUs' memory (${formatBytes(gpuMemoryBytes)}): vLLM will probably run out of memory; use more GPUs or a smaller (quantized) model`;
}

/** Warnings from the facts: a fallback probe directory, weights close to a model's GPU memory, a running start. */
function factWarnings(report: Pick<ProbeReport, 'vllm' | 'models'>, facts: ProbeFacts, worker: boolean): string[] {
  const out: string[] = [];
  if (!facts.probeDir.writable && !facts.probeDir.explicit) {
    out.push(`default probe directory ${facts.probeDir.dir} is not writable (${facts.probeDir.error ?? 'unknown error'}): start would use a temporary directory instead; set --probe-dir to choose one`);
  }
  if (worker) return out;
  if (facts.openFilesWarning !== undefined) out.push(facts.openFilesWarning);
  if (facts.usageDir !== undefined && !facts.usageDir.writable) {
    // The proxy's words when it cannot open the store (usage/store.ts).
    out.push(`usage store directory ${facts.usageDir.dir} cannot be used (${facts.usageDir.error ?? 'unknown error'}): start would count usage in memory only (limits still hold, budgets restart at 0 after a restart); to keep usage, set usage.dir or LLMSERVE_USAGE_DIR to a writable directory`);
  }
  if (facts.tlsWarning !== undefined) out.push(facts.tlsWarning);
  // Each model loads its weights on its own GPUs only: one model's spare memory is no help to another.
  for (const m of report.models) {
    const warning = weightWarning(m);
    if (warning !== null) out.push(report.models.length > 1 ? `model "${m.name}": ${warning}` : warning);
  }
  if (report.vllm.found && report.vllm.version === null) {
    out.push(`could not read a version from "${report.vllm.command} --version"${report.vllm.exitCode !== 0 ? ` (exit ${report.vllm.exitCode ?? 'signal'})` : ''}: ${JSON.stringify(report.vllm.raw)}`);
  }
  if (facts.running?.alive && !facts.running.owner) {
    out.push(`llmserve start (pid ${facts.running.pid}) is running with probe directory ${facts.probeDir.dir}: its ports show as in use`);
  }
  return out;
}

/**
 * The configured variables (environment_variables, the model's vllm.env) as that model's vLLM gets them (redacted),
 * and those its environment leaves out: VLLM_PORT, VLLM_API_KEY and key variables (buildVllmEnv). Why from the
 * plan's env: listing a removed one as vLLM's, or the vllm.env CUDA_VISIBLE_DEVICES that gpus replaced, would say
 * the opposite of what it gets.
 */
function modelEnv(plan: Plan, m: ModelPlan): { env: Record<string, string>; envRemoved: string[] } {
  const given: Record<string, string> = {};
  const envRemoved: string[] = [];
  for (const name of Object.keys({ ...plan.config.environment, ...m.config.env })) {
    const value = m.env[name];
    if (value === undefined) envRemoved.push(name);
    else given[name] = value;
  }
  return { env: redactEnv(given, plan.config.secrets.values), envRemoved };
}

/** Builds the report (the `--json` object) from the plan and the facts; pure. */
export function buildProbeReport(plan: Plan, facts: ProbeFacts): ProbeReport {
  const { config, inventory, selection, tensorParallel, model } = plan;
  const secrets = config.secrets.values;
  const selectedGpus = selection?.gpus ?? [];
  // Each model's own GPUs (every visible one for the single-model form); the top-level fields are the first's.
  const fits = plan.models.map((m) => weightFit(m.model.weightBytes, m.gpus));
  // Exactly what start runs: the plan's argv plus the --shutdown-timeout start appends (start.ts, supervisorPlan).
  const runArgv = (argv: readonly string[]) => withShutdownTimeout(argv, config.timeouts.stop).argv.map((a) => redactText(a, secrets));
  const argv = runArgv(plan.argv);
  // A --role worker runs only `ray start --address=HEAD` (commands/worker.ts): no model, no vLLM, no GPU check and no
  // port of its own, so only its probe directory can stop it. The rest stays in the report as information.
  const worker = config.cluster.role === 'worker';
  const problemDetails: ProblemEntry[] = worker
    ? factProblems(plan, facts).filter((p) => p.code === 'PROBE_DIR' || p.code === 'RAY_NOT_FOUND' || p.code === 'LOG_FILE')
    : [
        ...plan.problems.map((p) => ({ code: p.code, message: redactText(p.message, secrets), details: p.details.map((d) => redactText(d, secrets)) })),
        ...factProblems(plan, facts),
      ];
  const rayArgv = rayStartArgv(config);
  const models = plan.models.map((m, i) => {
    const mArgv = runArgv(m.argv);
    return {
      name: m.config.servedModelName,
      path: m.config.model,
      gpus: m.gpus?.map((g) => g.index) ?? null,
      gpuUuids: m.gpus?.map((g) => g.uuid) ?? null,
      cudaVisibleDevices: m.cudaVisibleDevices,
      tensorParallelSize: m.tensorParallel?.size ?? null,
      pipelineParallelSize: m.pipelineParallelSize,
      ...(fits[i] ?? weightFit(m.model.weightBytes, null)),
      vllm: { argv: mArgv, commandLine: formatArgv(mArgv), ...modelEnv(plan, m) },
      backend: (facts.backendPorts ?? [facts.backendPort])[i] ?? { host: '127.0.0.1', port: m.config.port, free: true, error: null },
    };
  });
  const partial = {
    model: {
      path: model.model,
      servedName: config.servedModelName,
      isLocalPath: model.isLocalPath,
      exists: model.exists,
      isFile: model.isFile,
      hasConfigJson: model.hasConfigJson,
      attentionHeads: model.attentionHeads,
      keyValueHeads: model.keyValueHeads,
      ...(fits[0] ?? weightFit(model.weightBytes, null)),
    },
    vllm: { ...facts.vllm, argv, commandLine: formatArgv(argv), envRemoved: models[0]?.vllm.envRemoved ?? [] },
  };
  return {
    ok: problemDetails.length === 0,
    gpus: selectedGpus.map((g) => ({ ...g })),
    allGpus: (inventory?.gpus ?? []).map((g) => ({ ...g, selected: selectedGpus.includes(g) })),
    gpuSource: inventory?.source ?? null,
    cudaVisibleDevices: selection?.cudaVisibleDevices ?? null,
    tensorParallelSize: tensorParallel?.size ?? null,
    tensorParallel: tensorParallel ? { size: tensorParallel.size, reason: tensorParallel.reason, requested: config.vllm.tensorParallelSize } : null,
    ...partial,
    backend: facts.backendPort,
    models,
    cluster: { ...config.cluster, ray: rayArgv === null ? null : { argv: rayArgv, commandLine: formatArgv(rayArgv), found: facts.rayFound ?? true, port: facts.rayPort ?? null } },
    proxy: { ...facts.proxyPort, tls: config.proxy.tls !== null, auth: config.proxy.auth },
    probes: { ...facts.probeDir, intervalSeconds: config.probes.interval },
    config: redactConfig(config),
    warnings: [...config.notes, ...(worker ? [] : plan.warnings), ...factWarnings({ ...partial, models }, facts, worker)].map((w) => redactText(w, secrets)),
    problems: problemDetails.map(problemText),
    problemDetails,
  };
}
