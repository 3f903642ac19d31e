// Build vLLM's command line and environment from the resolved configuration.
import { VLLM_ENV_DROPPED } from '../config/defaults.js';
import type { Config } from '../config/types.js';

/** The loopback address vLLM binds to: only the proxy may reach it. */
export const BACKEND_HOST = '127.0.0.1';

/**
 * The flag that turns uvicorn's access log off. Why llmserve adds it: vLLM's API server would print one line per
 * request (and per health check), doubling the proxy's own access log (which names the key), costing the API server's
 * single event loop time under load, and pushing the root cause of a crash out of the lines llmserve reads to
 * diagnose it. `vllm.access_log: true` leaves it on.
 */
export const DISABLE_ACCESS_LOG_FLAG = '--disable-uvicorn-access-log';

/** True when llmserve adds --disable-uvicorn-access-log: `vllm.access_log` is off and the flags do not say it already. */
export function addsAccessLogFlag(config: Config, extraArgs: readonly string[]): boolean {
  return !config.vllm.accessLog && !extraArgs.some((a) => a.replace(/_/g, '-') === DISABLE_ACCESS_LOG_FLAG);
}

/**
 * `--served-model-name NAME` as argv tokens: two, as users' scripts read them from probe's argv, except for a name that
 * starts with `-`, which vLLM's argparse takes for a flag (`expected at least one argument`): one `--served-model-name=NAME`.
 */
export function servedModelNameArgs(name: string): string[] {
  return name.startsWith('-') ? [`--served-model-name=${name}`] : ['--served-model-name', name];
}

/**
 * The vLLM command as argv: [command..., MODEL, --served-model-name NAME, --host, --port, --tensor-parallel-size,
 * --disable-uvicorn-access-log (unless `vllm.access_log` or the extra flags already say it), extra...].
 */
export function buildVllmArgv(config: Config, tensorParallelSize: number, extraArgs: readonly string[] = config.vllm.args): string[] {
  // MODEL goes first: --served-model-name takes one or more values and would swallow a positional after it.
  return [
    ...config.vllm.command,
    config.model,
    ...servedModelNameArgs(config.servedModelName),
    '--host',
    BACKEND_HOST,
    '--port',
    String(config.vllm.port),
    '--tensor-parallel-size',
    String(tensorParallelSize),
    // Before the extra flags, so that the user's own come last, as given.
    ...(addsAccessLogFlag(config, extraArgs) ? [DISABLE_ACCESS_LOG_FLAG] : []),
    ...extraArgs,
  ];
}

/** vLLM's environment: llmserve's own, plus configured variables, minus keys (VLLM_API_KEY too) and the VLLM_PORT trap. */
export function buildVllmEnv(config: Config, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...config.environment, ...config.vllm.env };
  // VLLM_PORT: vLLM reads it as an internal port, and Kubernetes injects VLLM_PORT=tcp://... for a service named vllm.
  // VLLM_API_KEY: vLLM turns its own auth on when it is set (api_server.py build_app); the proxy never forwards keys, so
  // every /v1 request, the readiness check included, would get 401 and the start would time out.
  for (const name of VLLM_ENV_DROPPED) delete env[name];
  // vLLM never needs llmserve's keys; a child's environment is readable in /proc by the same user. Nor under another
  // name: an inherited variable that holds a key (configured ones are refused at load, config/keys-in-env.ts).
  for (const name of keyVariables(env, config.secrets.envNames, config.secrets.values)) delete env[name];
  env.PYTORCH_CUDA_ALLOC_CONF ??= 'expandable_segments:True';
  // Why: CUDA numbers GPUs fastest first by default, nvidia-smi (and NVML, which vLLM also queries) by PCI bus. On a
  // machine with mixed GPUs the two differ, so CUDA_VISIBLE_DEVICES=1 would not be the GPU that nvidia-smi, probe and
  // vLLM's own NVML checks call 1 (vLLM issue #7472). In PCI bus order, every index means nvidia-smi's.
  env.CUDA_DEVICE_ORDER ??= 'PCI_BUS_ID';
  return env;
}

/** The variables of `env` that hold a key: named as a key's source (`os.environ/NAME`), or holding a key's value. */
export function keyVariables(env: NodeJS.ProcessEnv, names: readonly string[], values: readonly string[]): string[] {
  return Object.keys(env).filter((name) => names.includes(name) || (env[name] !== undefined && env[name] !== '' && values.includes(env[name]!)));
}

/** An environment without the variables llmserve's keys came from: for external programs (nvidia-smi), as for vLLM. */
export function withoutKeyVariables(env: NodeJS.ProcessEnv, keyVariables: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of keyVariables) delete out[name];
  return out;
}

/** Quotes an argv for display, one shell-safe token per element. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
