// Precedence: command-line flags > environment (LLMSERVE_*) > config file > defaults, one setting at a time.
import { basename, resolve } from 'node:path';
import { configError, type LlmserveError } from '../errors.js';
import type { CliOptions, Config, KeyEntry, ModelConfig } from './types.js';
import { resolveCluster, type Given } from './cluster.js';
import { modelBackendPort } from './models.js';
import { DEFAULT_ROUTES, DEFAULTS, MASTER_KEY_ENV, VLLM_ENV_DROPPED } from './defaults.js';
import { emptyFileSettings, type FileSettings } from './file-settings.js';
import { DEFAULT_DRAIN, DEFAULT_RESTART, DEFAULT_STALL_TIMEOUT, parseRestartPolicy } from './reliability.js';
import { DEFAULT_USAGE_FLUSH_INTERVAL, USAGE_DIR_ENV, usageDir } from './usage-settings.js';
import { envTypoNotes } from './env-typos.js';
import { mergeKeys, noKeys, rawKeyEntry, weakMasterKeyNote, type LoadedKeys } from './keys.js';
import { hasCountedLimits } from './key-policy.js';
import { refuseKeysInVllmEnv } from './keys-in-env.js';
import {
  at, parseBindHost, parseLogFormat, parseNonNegativeSeconds, parsePort, parseSeconds, parseString, parseTensorParallel,
} from './values.js';
import { isServiceLink, serviceLinkNotes } from './service-links.js';
import { workingDir } from '../util/cwd.js';

/** One setting's flag and environment variable names, by CliOptions field. */
export const FLAGS = {
  model: ['--model', 'LLMSERVE_MODEL'],
  servedModelName: ['--served-model-name', 'LLMSERVE_SERVED_MODEL_NAME'],
  port: ['--port', 'LLMSERVE_PORT'],
  host: ['--host', 'LLMSERVE_HOST'],
  backendPort: ['--backend-port', 'LLMSERVE_BACKEND_PORT'],
  tensorParallelSize: ['--tensor-parallel-size', 'LLMSERVE_TENSOR_PARALLEL_SIZE'],
  probeDir: ['--probe-dir', 'LLMSERVE_PROBE_DIR'],
  healthInterval: ['--health-interval', 'LLMSERVE_HEALTH_INTERVAL'],
  startupTimeout: ['--startup-timeout', 'LLMSERVE_STARTUP_TIMEOUT'],
  stopTimeout: ['--stop-timeout', 'LLMSERVE_STOP_TIMEOUT'],
  stallTimeout: ['--stall-timeout', 'LLMSERVE_STALL_TIMEOUT'],
  engineStallTimeout: ['--engine-stall-timeout', 'LLMSERVE_ENGINE_STALL_TIMEOUT'],
  drainDelay: ['--drain-delay', 'LLMSERVE_DRAIN_DELAY'],
  drainTimeout: ['--drain-timeout', 'LLMSERVE_DRAIN_TIMEOUT'],
  restart: ['--restart', 'LLMSERVE_RESTART'],
  logFormat: ['--log-format', 'LLMSERVE_LOG_FORMAT'],
  config: ['--config', 'LLMSERVE_CONFIG'],
  role: ['--role', 'LLMSERVE_ROLE'],
  nodes: ['--nodes', 'LLMSERVE_NODES'],
  head: ['--head', 'LLMSERVE_HEAD'],
} as const satisfies Record<Exclude<keyof CliOptions, 'extraArgs'>, readonly [string, string]>;

type Flag = keyof typeof FLAGS;

/**
 * Every LLMSERVE_* variable llmserve reads: the flags' and the master key, the log file and the usage directory (a set
 * one close to these but not among them is a likely typo).
 */
export const KNOWN_ENV: readonly string[] = [...Object.values(FLAGS).map(([, name]) => name), 'LLMSERVE_MASTER_KEY', 'LLMSERVE_LOG_FILE', USAGE_DIR_ENV];

/** A setting by precedence, flag > env > file, parsed (errors name the flag or variable); undefined when none sets it. */
export function pickSetting<T>(cli: CliOptions, env: NodeJS.ProcessEnv, flag: Flag, parse: (v: unknown, where: string) => T, fromFile: T | undefined): T | undefined {
  const [flagName, envName] = FLAGS[flag];
  const cliValue = cli[flag];
  if (cliValue !== undefined) return parse(cliValue, flagName);
  const e = envValue(env, envName);
  return e !== undefined ? parse(e, envName) : fromFile;
}

/**
 * A non-empty environment value, or undefined (an empty variable counts as unset, and so does a port variable that
 * holds a Kubernetes service link: see service-links.ts).
 */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' || isServiceLink(name, v) ? undefined : v;
}

/**
 * The master key as given, and where: the environment (LLMSERVE_MASTER_KEY, LITELLM_MASTER_KEY), else the file's
 * master key, else, as LiteLLM reads it (general_settings.master_key, else LITELLM_MASTER_KEY once
 * environment_variables are set), a master key variable in the config's own environment section. `check` picks
 * its key the same way, so that it authenticates with the key the proxy accepts.
 */
export function masterKeyGiven(env: NodeJS.ProcessEnv, f: FileSettings | null): { raw: string; origin: string } | undefined {
  const envMaster = MASTER_KEY_ENV.find((name) => envValue(env, name) !== undefined);
  if (envMaster !== undefined) return { raw: envValue(env, envMaster)!, origin: envMaster };
  if (f === null) return undefined;
  if (f.proxy.masterKey !== undefined) return { raw: f.proxy.masterKey.value, origin: f.proxy.masterKey.origin ?? 'master key' };
  const sectionMaster = MASTER_KEY_ENV.find((name) => (f.environment[name] ?? '') !== '');
  if (sectionMaster === undefined) return undefined;
  // Only a LiteLLM config fills `environment` (its `environment_variables`).
  return { raw: f.environment[sectionMaster]!, origin: at(f.file, `environment_variables.${sectionMaster}`) };
}

/**
 * Where the first backend port came from (the flag, its variable, `vllm.port` or the default), for the errors about
 * the ports of several models derived from it; `check` names it the same way.
 */
export function backendPortOrigin(cli: CliOptions, env: NodeJS.ProcessEnv, inFile: boolean): string {
  const [flagName, envName] = FLAGS.backendPort;
  if (cli.backendPort !== undefined) return flagName;
  if (envValue(env, envName) !== undefined) return envName;
  return inFile ? 'vllm.port' : `the default backend port ${DEFAULTS.vllmPort}`;
}

/** The public name derived from a model path or hub id: its last path component (of the resolved path for `.`, `..`). */
export function nameFromModel(model: string, cwd: () => string = workingDir): string {
  const trimmed = model.replace(/[/\\]+$/, '');
  const last = basename(trimmed);
  // `--model .` run in the model's directory (or `DIR/..`): the directory's own name, as `init` writes it, never ".".
  if (last === '.' || last === '..') return basename(resolve(cwd(), trimmed)) || model;
  return last || model;
}

/** Everything resolveConfig needs besides the file: the flags, the environment, the keys file's keys. */
export interface ResolveInput {
  cli: CliOptions;
  env: NodeJS.ProcessEnv;
  file: FileSettings | null;
  keysFromFile: LoadedKeys | null;
  /** CPUs this process may use, for `proxy.workers: auto` (1 when not given). */
  cores?: number;
}

/** Builds the one Config from flags, environment, file and defaults. */
export function resolveConfig({ cli, env, file, keysFromFile, cores = 1 }: ResolveInput): Config {
  const f = file ?? emptyFileSettings('', 'llmserve');
  const notes = [...f.notes];

  const pick = <T>(flag: Flag, parse: (v: unknown, where: string) => T, fromFile: T | undefined): T | undefined => pickSetting(cli, env, flag, parse, fromFile);

  /** The raw value of a flag or its env variable, with where it came from. */
  const given = (flag: Flag): Given => {
    const [flagName, envName] = FLAGS[flag];
    const v = cli[flag];
    if (v !== undefined) return { value: v, where: flagName };
    const e = envValue(env, envName);
    return e === undefined ? undefined : { value: e, where: envName };
  };
  const cluster = resolveCluster(given('role'), given('nodes'), given('head'), f.models?.length ?? 1);
  const worker = cluster.role === 'worker';
  if (f.models !== undefined) {
    for (const flag of ['model', 'servedModelName'] as const) {
      const g = given(flag);
      if (g !== undefined) throw configError(`${g.where} cannot be used with the models: list of ${f.file}: set model and served_model_name in each entry`);
    }
  }

  // Before the errors below: a misspelt variable (LLMSERVE_MASTERKEY) is most often the very cause of one.
  const typoNotes = envTypoNotes(env, KNOWN_ENV, [...f.envRefs, ...(keysFromFile?.envNames ?? [])]);
  const model = f.models?.[0]?.model ?? pick('model', (v, w) => parseString(v, w, 'a model path or hub id'), f.model) ?? (worker ? '' : undefined);
  if (model === undefined) {
    if (f.format === 'litellm') {
      throw configError(withTypoNotes(`--model PATH is required with a LiteLLM config: its litellm_params.model names a provider route, not the weights vLLM loads; pass --model /path/to/model (or a hub id like org/name) or set LLMSERVE_MODEL (config: ${f.file})`, typoNotes));
    }
    throw configError(withTypoNotes(`no model given: pass --model PATH (a local directory or a hub id like org/name), set LLMSERVE_MODEL, or set model: in ${file ? f.file : 'a config file (llmserve.yaml)'}`, typoNotes));
  }
  const servedModelName = f.models !== undefined ? (f.models[0]?.servedModelName ?? nameFromModel(model)) : (pick('servedModelName', (v, w) => parseString(v, w), f.servedModelName) ?? nameFromModel(model));
  if (f.wildcardModelName !== undefined) {
    const from = given('servedModelName')?.where ?? 'derived from the model path; --served-model-name sets another';
    const { name, where } = f.wildcardModelName;
    notes.push(`${where}: "${name}" is a LiteLLM wildcard route, and vLLM answers only the names it serves (requests for "${name}" would all get 404): the model is served as "${servedModelName}" (${from})`);
  }

  const filePort = f.proxy.port;
  const production = envValue(env, 'OPENBAYES_SERVING_PRODUCTION') !== undefined;
  const autoPort = production ? DEFAULTS.proxyPortProduction : DEFAULTS.proxyPort;
  const port = pick('port', parsePort, filePort === 'auto' ? undefined : filePort) ?? autoPort;
  const host = pick('host', parseBindHost, f.proxy.host) ?? DEFAULTS.proxyHost;
  const probeDir = pick('probeDir', (v, w) => parseString(v, w, 'a directory path'), f.probes.dir);

  // Keys: no flag on purpose (a command line is visible to every process); env beats the file.
  let master: LoadedKeys = noKeys();
  const masterGiven = masterKeyGiven(env, f);
  if (masterGiven !== undefined) {
    const { entry, value } = rawKeyEntry('master', masterGiven.raw, masterGiven.origin);
    const origin = masterGiven.origin;
    if (f.proxy.masterPolicy !== undefined) entry.policy = f.proxy.masterPolicy;
    // The file's own master key counts as a secret even when the environment overrides it: its variable must still
    // leave vLLM's environment, and its value still be redacted.
    const fileMaster = f.proxy.masterKey;
    const envNames = fileMaster?.envName !== undefined ? [fileMaster.envName] : [];
    const values = fileMaster !== undefined && fileMaster.value !== value && fileMaster.value !== '' ? [value, fileMaster.value] : [value];
    const weak = weakMasterKeyNote(value, origin);
    master = { entries: [entry], values, envNames, origins: [origin], notes: weak ? [weak] : [] };
    // No note when the file itself points at that variable (`master_key: os.environ/LLMSERVE_MASTER_KEY`): nothing is overridden.
    if (MASTER_KEY_ENV.includes(origin) && f.proxy.masterKey && f.proxy.masterKey.envName !== origin) notes.push(`${origin} overrides ${f.proxy.masterKey.origin}`);
  }
  const keys = mergeKeys(master, f.proxy.keys, keysFromFile ?? noKeys());
  // Keys of the keys file are marked: the proxy re-reads that file on SIGHUP, and a key removed there must go.
  for (const entry of keysFromFile?.entries ?? []) entry.fromKeysFile = true;
  const envNames = [...MASTER_KEY_ENV, ...keys.envNames.filter((n) => !MASTER_KEY_ENV.includes(n))];
  const auth = f.proxy.auth ?? true;
  const keysFile = f.proxy.keysFile ?? null;

  if (!auth) {
    notes.push(`proxy.auth is false: no API key is checked; anyone who can reach ${host}:${port} can use the model${keys.entries.length > 0 ? ' (the configured keys are ignored)' : ''}`);
  } else if (keys.entries.length === 0 && !worker) {
    if (keysFile === null) throw noKeyError(f, file !== null, typoNotes);
    notes.push(`${keysFile}: the keys file has no keys yet: every request is refused until keys are added and llmserve gets SIGHUP`);
  }
  notes.push(...keys.notes);
  notes.push(...typoNotes);
  notes.push(...serviceLinkNotes(env, KNOWN_ENV));

  const vllmPort = pick('backendPort', parsePort, f.vllm.port) ?? DEFAULTS.vllmPort;
  const tensorParallelSize = pick('tensorParallelSize', parseTensorParallel, f.vllm.tensorParallelSize) ?? 'auto';
  const sharedArgs = [...f.vllm.args];
  const extraArgs = cli.extraArgs ?? [];
  const backendPortFrom = backendPortOrigin(cli, env, f.vllm.port !== undefined);
  const models: ModelConfig[] = (f.models ?? [{ model, args: [], env: {} }]).map((m, i) => ({
    model: m.model,
    servedModelName: i === 0 ? servedModelName : (m.servedModelName ?? nameFromModel(m.model)),
    gpus: m.gpus ?? null,
    // Several models: each on its own port, the backend port and up unless the entry sets one.
    port: modelBackendPort(m.port, vllmPort, i, f.file, backendPortFrom),
    tensorParallelSize: m.tensorParallelSize ?? tensorParallelSize,
    args: [...sharedArgs, ...m.args, ...extraArgs],
    env: { ...f.vllm.env, ...m.env },
  }));
  const seenPorts = new Map<number, string>();
  const seenNames = new Map<string, number>();
  for (const [i, m] of models.entries()) {
    const other = seenNames.get(m.servedModelName);
    if (other !== undefined) throw configError(`${f.file}: models[${i}]: the public name "${m.servedModelName}" is already used by models[${other}]; give each entry its own served_model_name`);
    seenNames.set(m.servedModelName, i);
    const clash = seenPorts.get(m.port);
    if (clash !== undefined) throw configError(`${f.file}: models "${clash}" and "${m.servedModelName}" would both use backend port ${m.port}; give each entry its own \`port\``);
    seenPorts.set(m.port, m.servedModelName);
  }
  if (models.length > 1) {
    // Why: with several models the proxy routes an alias only to a served name; any other target, or an alias that
    // is itself a model's name (that model wins), would silently answer 404 or route elsewhere than written.
    const names = models.map((m) => `"${m.servedModelName}"`).join(', ');
    for (const [alias, target] of Object.entries(f.proxy.modelAliases ?? {})) {
      const where = at(f.file, `proxy.model_aliases.${alias}`);
      if (!seenNames.has(target)) throw configError(`${where}: expected the served name of one of the models (${names}), got "${target}"`);
      const own = seenNames.get(alias);
      if (own !== undefined && target !== alias) throw configError(`${where}: "${alias}" is the served name of models[${own}]; an alias needs a name of its own`);
    }
  }
  // A worker binds none of these ports: it only lends its GPUs to the head's Ray cluster.
  if (!worker) {
    /** Where a port came from, for the error: the flag or variable, the file's key, or the default. */
    const origin = (flag: Flag, fileKey: string, inFile: boolean): string => given(flag)?.where ?? (inFile ? at(f.file, fileKey) : 'the default');
    const backendOrigin = origin('backendPort', f.vllm.portKey ?? 'vllm.port', f.vllm.port !== undefined);
    // vLLM and the metrics listener bind 127.0.0.1: the public port clashes with theirs only when its address
    // covers loopback (a wildcard or a loopback address), not on a specific external address.
    const publicOverlapsLoopback = host === '0.0.0.0' || host === '::' || host === 'localhost' || host.startsWith('127.');
    const publicPort = { what: 'the public port', where: origin('port', 'proxy.port', filePort !== undefined && filePort !== 'auto'), port };
    const local = [
      ...models.map((m, i) => ({
        what: models.length > 1 ? `the backend port of model "${m.servedModelName}"` : 'the backend port',
        where: f.models?.[i]?.port !== undefined ? at(f.file, `models[${i}].port`) : i === 0 ? backendOrigin : `${backendOrigin} + ${i}`,
        port: m.port,
      })),
      ...(f.proxy.metricsPort === undefined ? [] : [{ what: 'the metrics port', where: at(f.file, 'proxy.metrics_port'), port: f.proxy.metricsPort }]),
    ];
    assertDistinctPorts([...(publicOverlapsLoopback ? [publicPort] : []), ...local]);
    // The Ray head binds its port on every address (`ray start --head --port=6379`): any listener of ours on it
    // clashes, whatever its address, and `ray start` would fail only once the proxy holds the port.
    const onRayPort = cluster.role === 'head' ? [publicPort, ...local].find((p) => p.port === DEFAULTS.rayPort) : undefined;
    if (onRayPort !== undefined) throw configError(`${onRayPort.what} (${onRayPort.where}) is ${DEFAULTS.rayPort}, the port the Ray head binds on every address (--role head); choose another`);
  }
  refuseKeysInVllmEnv([
    { file: f.environmentFile ?? f.file, path: 'environment_variables', env: f.environment },
    { file: f.file, path: 'vllm.env', env: f.vllm.env },
    ...(f.models ?? []).map((m, i) => ({ file: f.file, path: `models[${i}].vllm.env`, env: m.env })),
  ], keys.entries, [...VLLM_ENV_DROPPED, ...envNames]);
  const first = models[0]!;

  return {
    configFile: file ? f.file : null,
    configFormat: file ? f.format : null,
    model,
    servedModelName,
    vllm: {
      command: f.vllm.command ?? [...DEFAULTS.vllmCommand],
      port: first.port,
      tensorParallelSize: first.tensorParallelSize,
      args: first.args,
      env: first.env,
      accessLog: f.vllm.accessLog ?? false,
    },
    models,
    cluster,
    ray: { command: f.ray.command ?? [...DEFAULTS.rayCommand] },
    proxy: {
      port,
      host,
      auth,
      keys: keys.entries,
      keysFile,
      routes: f.proxy.routes ?? [...DEFAULT_ROUTES],
      modelAliases: { ...f.proxy.modelAliases },
      maxBodyBytes: f.proxy.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      firstByteTimeout: f.proxy.firstByteTimeout ?? DEFAULTS.firstByteTimeout,
      headersTimeout: f.proxy.headersTimeout ?? DEFAULTS.headersTimeout,
      bodyTimeout: f.proxy.bodyTimeout ?? DEFAULTS.bodyTimeout,
      keepAliveTimeout: f.proxy.keepAliveTimeout ?? DEFAULTS.keepAliveTimeout,
      tls: f.proxy.tls ?? null,
      logHealth: f.proxy.logHealth ?? false,
      metricsPort: f.proxy.metricsPort ?? null,
      workers: proxyWorkers(f.proxy.workers ?? 'auto', keys.entries, f.usage?.track ?? 'limited', cores, at(f.file, 'proxy.workers')),
    },
    probes: {
      dir: probeDir ?? DEFAULTS.probeDir,
      dirExplicit: probeDir !== undefined,
      interval: pick('healthInterval', parseSeconds, f.probes.interval) ?? DEFAULTS.probeInterval,
      require: f.probes.require ?? 'all',
    },
    timeouts: {
      startup: pick('startupTimeout', parseSeconds, f.startupTimeout) ?? DEFAULTS.startupTimeout,
      stop: pick('stopTimeout', parseSeconds, f.stopTimeout) ?? DEFAULTS.stopTimeout,
      stall: pick('stallTimeout', parseSeconds, f.stallTimeout) ?? DEFAULT_STALL_TIMEOUT,
      engineStall: pick('engineStallTimeout', parseNonNegativeSeconds, f.engineStallTimeout) ?? 0,
    },
    // The flag and variable set the policy; the budget and backoff of the file's long form (or the defaults) stay.
    restart: { ...(f.restart ?? DEFAULT_RESTART), policy: pick('restart', parseRestartPolicy, f.restart?.policy) ?? DEFAULT_RESTART.policy },
    drain: {
      delay: pick('drainDelay', parseNonNegativeSeconds, f.drain?.delay) ?? DEFAULT_DRAIN.delay,
      timeout: pick('drainTimeout', parseNonNegativeSeconds, f.drain?.timeout) ?? DEFAULT_DRAIN.timeout,
    },
    usage: {
      dir: usageDir(env, f.usage?.dir, file ? f.file : null, workingDir()),
      track: f.usage?.track ?? 'limited',
      flushInterval: f.usage?.flushInterval ?? DEFAULT_USAGE_FLUSH_INTERVAL,
    },
    log: { format: pick('logFormat', parseLogFormat, f.logFormat) ?? DEFAULTS.logFormat },
    environment: { ...f.environment },
    secrets: { values: keys.values, envNames, keysFileEnvNames: keysFromFile?.envNames ?? [] },
    notes,
    extra: { ...f.extra },
  };
}

/**
 * The error for a proxy without any key, with the fixes that work for the file's format. Why: a LiteLLM config has
 * no setting that turns authentication off (llmserve reads only its model_list, general_settings.master_key and
 * environment_variables), and a misspelt `general_settings` there is ignored, not refused: the error says so.
 */
function noKeyError(f: FileSettings, hasFile: boolean, typoNotes: readonly string[]): LlmserveError {
  const litellm = f.format === 'litellm';
  const where = litellm ? 'general_settings.master_key' : 'proxy.master_key';
  const inFile = hasFile ? ` in ${f.masterKeyFile ?? f.file}` : ' in a config file';
  const typos = f.misspelt !== undefined ? ` (${f.file}: ignored as misspelt: ${f.misspelt.join(', ')})` : '';
  const open = litellm
    ? 'a LiteLLM config cannot turn authentication off: to serve without it, use llmserve\'s own format with proxy.auth: false (llmserve init writes one)'
    : 'to serve without authentication, set proxy.auth: false';
  return configError(withTypoNotes(`no API key configured, so the proxy would refuse every request: export LLMSERVE_MASTER_KEY=... (a long random value), or set ${where}: os.environ/NAME${inFile}${typos}; ${open}`, typoNotes));
}

/** An error message followed by the notes on misspelt variables, when there are any. */
function withTypoNotes(message: string, typoNotes: readonly string[]): string {
  return typoNotes.length === 0 ? message : `${message} (${typoNotes.join('; ')})`;
}

/** Refuses two listeners on one port (exit 2), naming both and where each was set: the second could never bind. */
export function assertDistinctPorts(ports: readonly { what: string; where: string; port: number }[]): void {
  ports.forEach((a, i) => {
    // Port 0 asks the system for a free port: two of them never clash.
    if (a.port === 0) return;
    const b = ports.slice(i + 1).find((p) => p.port === a.port);
    if (b !== undefined) throw configError(`${a.what} (${a.where}) and ${b.what} (${b.where}) are both ${a.port}: each needs a port of its own; change one of them`);
  });
}

/** Proxy processes `auto` starts on a machine with enough cores: measured to carry 1,000 streams at 20 ms on 2 cores. */
const AUTO_WORKERS = 2;

/**
 * `proxy.workers`, refused above 1 where a counter must see every request: key limits (rpm, tpm, max_parallel,
 * budgets) and usage.track: all are counted in the proxy process, so N processes would each allow the full limit.
 * `auto` (the default) is 1 there, and otherwise min(2, cores).
 */
function proxyWorkers(workers: number | 'auto', keys: readonly KeyEntry[], track: 'limited' | 'all', cores: number, where: string): number {
  // Only limits counted across requests: models, expires and disabled are judged alike in every process.
  const limited = keys.filter((k) => hasCountedLimits(k.policy)).map((k) => k.name);
  if (workers === 'auto') return limited.length > 0 || track === 'all' ? 1 : Math.max(1, Math.min(AUTO_WORKERS, cores));
  if (workers === 1) return 1;
  if (limited.length > 0) {
    throw configError(
      `${where}: ${workers} cannot be used with per-key limits (keys ${limited.slice(0, 3).join(', ')}${limited.length > 3 ? ', ...' : ''}): their limits are counted in the proxy process, and ${workers} processes would each count requests, tokens and budgets on their own (every rpm, tpm, max_parallel and budget multiplied by ${workers}); remove those limits from the keys (models, expires and disabled may stay) or set proxy.workers: 1 (auto picks 1 for you)`,
    );
  }
  if (track === 'all') {
    throw configError(`${where}: ${workers} cannot be used with usage.track: all: token usage is counted in the proxy process; set usage.track: limited or proxy.workers: 1 (auto picks 1 for you)`);
  }
  return workers;
}
