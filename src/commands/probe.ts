// `llmserve probe`: everything `start` would do, worked out and printed, with nothing started.
import { loadConfig, type CliOptions } from '../config/index.js';
import { DEFAULTS } from '../config/defaults.js';
import { ExitCode } from '../errors.js';
import { BACKEND_HOST } from '../engine/command.js';
import type { RunCommand } from '../gpu/nvidia-smi.js';
import { makePlan } from '../plan.js';
import { portFact, probeDirFact, runningFact, tlsFacts, unreadableTlsFiles } from '../probe/machine.js';
import { redactText } from '../probe/redact.js';
import { buildProbeReport } from '../probe/report.js';
import { probeLines } from '../probe/text.js';
import { probeVllmVersion } from '../probe/vllm-version.js';
import { runCommand } from '../util/run.js';
import { writeStdout } from '../util/output.js';
import { lowOpenFileLimitWarning, ownOpenFileLimit } from '../util/open-files.js';
import { logFileOpenError, logFileProblem } from './log-file.js';

/** Options of `probe` beyond the shared configuration flags. */
export interface ProbeOptions extends CliOptions {
  json?: boolean;
}

/** Side effects of `probe`, with real defaults. */
export interface ProbeDeps {
  run?: RunCommand;
  env?: NodeJS.ProcessEnv;
  write?: (text: string) => void;
}

/** Runs `llmserve probe`; resolves to 0 when start would proceed, 1 when a problem would stop it (config errors throw, exit 2). */
export async function runProbe(options: ProbeOptions, deps: ProbeDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const run = deps.run ?? runCommand;
  const write = deps.write ?? writeStdout;
  const { json, ...cli } = options;
  const config = await loadConfig(cli, { env });
  const plan = await makePlan(config, { run, env });
  const [vllm, proxyPort, backendPorts, probeDir, tlsUnreadable, metricsPort, rayPort, ray] = await Promise.all([
    probeVllmVersion(config.vllm.command[0] ?? 'vllm', run, plan.env),
    portFact(config.proxy.port, config.proxy.host),
    Promise.all(config.models.map((m) => portFact(m.port, BACKEND_HOST))),
    probeDirFact(config.probes.dir, config.probes.dirExplicit),
    unreadableTlsFiles(config.proxy.tls),
    config.proxy.metricsPort === null ? null : portFact(config.proxy.metricsPort, '127.0.0.1'),
    // start checks a head's Ray port before anything starts (start.ts, checkPorts): so does probe.
    config.cluster.role === 'head' ? portFact(DEFAULTS.rayPort, '0.0.0.0') : undefined,
    // A head or worker that cannot run `ray` fails at once (exit 2): the same `COMMAND --version` test as for vLLM.
    config.cluster.role !== 'single' ? probeVllmVersion(config.ray.command[0] ?? 'ray', run, plan.env) : undefined,
  ]);
  const running = probeDir.exists ? runningFact(config.probes.dir) : null;
  // What start checks besides the plan: the log file it opens first (from the environment: probe has no --log-file),
  // the usage store's directory (the proxy's; a worker has none) and the open-file limit (not a worker's either).
  const logFile = env.LLMSERVE_LOG_FILE || undefined;
  const logFileError = logFile === undefined ? null : await logFileOpenError(logFile);
  const worker = config.cluster.role === 'worker';
  const usageDir = worker || config.usage.dir === null ? undefined : await probeDirFact(config.usage.dir, true);
  const openFilesWarning = worker ? null : lowOpenFileLimitWarning(ownOpenFileLimit());
  const tls = tlsUnreadable.length === 0 ? await tlsFacts(config.proxy.tls, Date.now()) : {};
  const backendPort = backendPorts[0]!;
  const report = buildProbeReport(plan, { vllm, proxyPort, backendPort, probeDir, tlsUnreadable, running, ...(backendPorts.length > 1 ? { backendPorts } : {}), ...(metricsPort ? { metricsPort } : {}), ...(tls.invalid !== undefined ? { tlsInvalid: tls.invalid, ...(tls.invalidFix !== undefined ? { tlsInvalidFix: tls.invalidFix } : {}) } : {}), ...(tls.warning !== undefined ? { tlsWarning: tls.warning } : {}), ...(rayPort ? { rayPort } : {}), ...(ray ? { rayFound: ray.found, ...(ray.found || ray.raw === '' ? {} : { rayUnrunnable: ray.raw }) } : {}),
    ...(logFile !== undefined && logFileError !== null ? { logFileError: `LLMSERVE_LOG_FILE: cannot open ${logFile}: ${logFileProblem(logFile, logFileError)}` } : {}),
    ...(usageDir ? { usageDir } : {}),
    ...(openFilesWarning !== null ? { openFilesWarning } : {}),
  });
  const text = json === true ? JSON.stringify(report, null, 2) : probeLines(report).join('\n');
  // Last line of defence: no known key value leaves this process, whatever field it hid in.
  write(redactText(text, config.secrets.values) + '\n');
  return report.ok ? ExitCode.ok : ExitCode.runtime;
}
