// What `start` checks before it starts anything (exit 2, nothing started): ports, vLLM's and Ray's commands, TLS files.
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import { DEFAULTS } from '../config/defaults.js';
import { BACKEND_HOST } from '../engine/command.js';
import { LlmserveError } from '../errors.js';
import { loadTls } from '../proxy/tls.js';
import { describePortHolder, findPortHolder } from '../supervisor/port-holder.js';
import { interpreterFailure, RAY_INSTALL_FIX, spawnFailure, VLLM_INSTALL_FIX } from '../supervisor/spawn-failure.js';
import type { SupervisorPlan } from '../supervisor/types.js';
import { describeBindFailure } from '../util/bind-failure.js';
import { portBindError } from '../util/port.js';
import { missingInterpreter, unrunnableReason } from '../util/which.js';

/** Fails fast (exit 2, nothing started) when the public or the backend port is taken, naming the holder if known. */
export async function checkPortsFree(config: Config): Promise<void> {
  // Why check the backend port ourselves: vLLM binds with SO_REUSEPORT and would not fail on a busy port.
  const several = config.models.length > 1;
  const ports = [
    { what: 'public', host: config.proxy.host, port: config.proxy.port, fix: 'choose another with --port N (proxy.port)' },
    ...config.models.map((m) => ({
      what: several ? `backend (model "${m.servedModelName}")` : 'backend',
      host: BACKEND_HOST,
      port: m.port,
      fix: `choose another with ${several ? 'models[].port, or --backend-port N (vllm.port, the first of the range)' : '--backend-port N (vllm.port)'}`,
    })),
  ];
  // The metrics listener is the proxy's too: found busy here, it is named with its setting instead of failing in the proxy.
  if (config.proxy.metricsPort !== null) ports.push({ what: 'metrics', host: '127.0.0.1', port: config.proxy.metricsPort, fix: 'choose another with proxy.metrics_port' });
  // A Ray head binds its GCS port: busy (another Ray on this machine), `ray start --head` would fail only after the
  // proxy started. (One port for two of these listeners is refused with the configuration already.)
  if (config.cluster.role === 'head') ports.push({ what: 'Ray head', host: '0.0.0.0', port: DEFAULTS.rayPort, fix: 'run `ray stop` if it is a Ray left from an earlier run (the head always uses 6379)' });
  for (const { what, host, port, fix } of ports) {
    const errno = await portBindError(port, host);
    if (errno === null) continue;
    const holder = errno === 'EADDRINUSE' ? describePortHolder(findPortHolder(port)) : null;
    const failure = describeBindFailure({ what, host, port, portFix: fix }, errno, holder);
    throw new LlmserveError(failure.code, `${failure.message}; ${failure.fix}`);
  }
}

/**
 * Fails fast (exit 2, nothing started) when vLLM's or Ray's command cannot be run. Why before the proxy: the spawn
 * would fail the same way, but only after the proxy had started (and made its usage store), against "nothing is
 * started" for a machine that does not fit.
 */
export function checkCommandsRunnable(plan: SupervisorPlan): void {
  const commands = [...plan.backends.map((b) => ({ argv: b.argv, env: b.env, fix: VLLM_INSTALL_FIX })), ...(plan.ray ? [{ argv: plan.ray.argv, env: plan.ray.env, fix: RAY_INSTALL_FIX }] : [])];
  for (const { argv, env, fix } of commands) checkCommandRunnable(argv[0]!, env, fix);
}

/** Throws the spawn failure (exit 2) that running `file` in `env` would meet: not found, not executable, a script whose interpreter cannot run. */
export function checkCommandRunnable(file: string, env: NodeJS.ProcessEnv, fix: string): void {
  const code = unrunnableReason(file, env);
  if (code !== null) throw spawnFailure(file, Object.assign(new Error(code), { code }), fix);
  const interpreter = missingInterpreter(file, env);
  if (interpreter !== null) throw interpreterFailure(file, interpreter, fix);
}

/** Reads and checks the TLS certificate and key once, so a bad file is a start-up error (exit 2), not a proxy crash. */
export async function checkTlsFiles(config: Config): Promise<void> {
  const tls = config.proxy.tls;
  if (!tls) return;
  for (const [what, file] of [['proxy.tls.cert', tls.cert], ['proxy.tls.key', tls.key]] as const) {
    await readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new LlmserveError('TLS', `${what}: cannot read ${file}: ${err.code ?? err.message}`, {
        details: ['Fix: point proxy.tls.cert / proxy.tls.key at readable PEM files.'],
      });
    });
  }
  // Readable is not enough: not PEM, or a key of another certificate, would fail in the proxy (exit 3, three times).
  await loadTls(tls);
}
