// Precedence: command-line flags > environment (LLMSERVE_*) > config file > defaults, one setting at a time.
import { basename } from 'node:path';
import { configError } from '../errors.js';
import type { CliOptions, Config } from './types.js';
import { DEFAULT_ROUTES, DEFAULTS, MASTER_KEY_ENV } from './defaults.js';
import { emptyFileSettings, type FileSettings } from './file-settings.js';
import { DEFAULT_DRAIN, DEFAULT_RESTART, DEFAULT_STALL_TIMEOUT } from './reliability.js';
import { DEFAULT_USAGE_FLUSH_INTERVAL, usageDir } from './usage-settings.js';
import { mergeKeys, noKeys, rawKeyEntry, weakKeyNote, type LoadedKeys } from './keys.js';
import {
  parseLogFormat, parsePort, parseSeconds, parseString, parseTensorParallel,
} from './values.js';

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
  logFormat: ['--log-format', 'LLMSERVE_LOG_FORMAT'],
  config: ['--config', 'LLMSERVE_CONFIG'],
} as const satisfies Record<Exclude<keyof CliOptions, 'extraArgs'>, readonly [string, string]>;

type Flag = keyof typeof FLAGS;

/** A non-empty environment value, or undefined (an empty variable counts as unset). */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** The public name derived from a model path or hub id: its last path component. */
export function nameFromModel(model: string): string {
  const trimmed = model.replace(/[/\\]+$/, '');
  return basename(trimmed) || model;
}

/** Everything resolveConfig needs besides the file: the flags, the environment, the keys file's keys. */
export interface ResolveInput {
  cli: CliOptions;
  env: NodeJS.ProcessEnv;
  file: FileSettings | null;
  keysFromFile: LoadedKeys | null;
}

/** Builds the one Config from flags, environment, file and defaults. */
export function resolveConfig({ cli, env, file, keysFromFile }: ResolveInput): Config {
  const f = file ?? emptyFileSettings('', 'llmserve');
  const notes = [...f.notes];

  /** flag > env > file, parsed; undefined when none of them sets it. */
  function pick<T>(flag: Flag, parse: (v: unknown, where: string) => T, fromFile: T | undefined): T | undefined {
    const [flagName, envName] = FLAGS[flag];
    const cliValue = cli[flag];
    if (cliValue !== undefined) return parse(cliValue, flagName);
    const e = envValue(env, envName);
    if (e !== undefined) return parse(e, envName);
    return fromFile;
  }

  const model = pick('model', (v, w) => parseString(v, w, 'a model path or hub id'), f.model);
  if (model === undefined) {
    if (f.format === 'litellm') {
      throw configError(`--model PATH is required with a LiteLLM config: its litellm_params.model names a provider route, not the weights vLLM loads; pass --model /path/to/model (or a hub id like org/name) or set LLMSERVE_MODEL (config: ${f.file})`);
    }
    throw configError(`no model given: pass --model PATH (a local directory or a hub id like org/name), set LLMSERVE_MODEL, or set model: in ${file ? f.file : 'a config file (llmserve.yaml)'}`);
  }
  const servedModelName = pick('servedModelName', (v, w) => parseString(v, w), f.servedModelName) ?? nameFromModel(model);

  const filePort = f.proxy.port;
  const production = envValue(env, 'OPENBAYES_SERVING_PRODUCTION') !== undefined;
  const autoPort = production ? DEFAULTS.proxyPortProduction : DEFAULTS.proxyPort;
  const port = pick('port', parsePort, filePort === 'auto' ? undefined : filePort) ?? autoPort;
  const host = pick('host', (v, w) => parseString(v, w, 'a bind address like 0.0.0.0'), f.proxy.host) ?? DEFAULTS.proxyHost;
  const probeDir = pick('probeDir', (v, w) => parseString(v, w, 'a directory path'), f.probes.dir);

  // Keys: no flag on purpose (a command line is visible to every process); env beats the file.
  let master: LoadedKeys = noKeys();
  const envMaster = MASTER_KEY_ENV.find((name) => envValue(env, name) !== undefined);
  const masterRaw = envMaster !== undefined ? envValue(env, envMaster) : f.proxy.masterKey?.value;
  if (masterRaw !== undefined) {
    const origin = envMaster ?? f.proxy.masterKey?.origin ?? 'master key';
    const { entry, value } = rawKeyEntry('master', masterRaw, origin);
    if (f.proxy.masterPolicy !== undefined) entry.policy = f.proxy.masterPolicy;
    const envNames = envMaster === undefined && f.proxy.masterKey?.envName !== undefined ? [f.proxy.masterKey.envName] : [];
    const weak = weakKeyNote('master', value);
    master = { entries: [entry], values: [value], envNames, origins: [origin], notes: weak ? [weak] : [] };
    // No note when the file itself points at that variable (`master_key: os.environ/LLMSERVE_MASTER_KEY`): nothing is overridden.
    if (envMaster !== undefined && f.proxy.masterKey && f.proxy.masterKey.envName !== envMaster) notes.push(`${envMaster} overrides ${f.proxy.masterKey.origin}`);
  }
  const keys = mergeKeys(master, f.proxy.keys, keysFromFile ?? noKeys());
  // Keys of the keys file are marked: the proxy re-reads that file on SIGHUP, and a key removed there must go.
  for (const entry of keysFromFile?.entries ?? []) entry.fromKeysFile = true;
  const envNames = [...MASTER_KEY_ENV, ...keys.envNames.filter((n) => !MASTER_KEY_ENV.includes(n))];
  const auth = f.proxy.auth ?? true;
  const keysFile = f.proxy.keysFile ?? null;

  if (!auth) {
    notes.push(`WARNING: proxy.auth is false: no API key is checked; anyone who can reach ${host}:${port} can use the model${keys.entries.length > 0 ? ' (the configured keys are ignored)' : ''}`);
  } else if (keys.entries.length === 0) {
    if (keysFile === null) {
      const where = f.format === 'litellm' ? 'general_settings.master_key' : 'proxy.master_key';
      throw configError(`no API key configured, so the proxy would refuse every request: export LLMSERVE_MASTER_KEY=... (a long random value), or set ${where}: os.environ/NAME${file ? ` in ${f.file}` : ' in a config file'}; to serve without authentication, set proxy.auth: false`);
    }
    notes.push(`${keysFile}: the keys file has no keys yet: every request is refused until keys are added and llmserve gets SIGHUP`);
  }
  notes.push(...keys.notes);

  return {
    configFile: file ? f.file : null,
    configFormat: file ? f.format : null,
    model,
    servedModelName,
    vllm: {
      command: f.vllm.command ?? [...DEFAULTS.vllmCommand],
      port: pick('backendPort', parsePort, f.vllm.port) ?? DEFAULTS.vllmPort,
      tensorParallelSize: pick('tensorParallelSize', parseTensorParallel, f.vllm.tensorParallelSize) ?? 'auto',
      args: [...f.vllm.args, ...(cli.extraArgs ?? [])],
      env: { ...f.vllm.env },
    },
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
      tls: f.proxy.tls ?? null,
      logHealth: f.proxy.logHealth ?? false,
      metricsPort: f.proxy.metricsPort ?? null,
    },
    probes: {
      dir: probeDir ?? DEFAULTS.probeDir,
      dirExplicit: probeDir !== undefined,
      interval: pick('healthInterval', parseSeconds, f.probes.interval) ?? DEFAULTS.probeInterval,
    },
    timeouts: {
      startup: pick('startupTimeout', parseSeconds, f.startupTimeout) ?? DEFAULTS.startupTimeout,
      stop: pick('stopTimeout', parseSeconds, f.stopTimeout) ?? DEFAULTS.stopTimeout,
      stall: f.stallTimeout ?? DEFAULT_STALL_TIMEOUT,
    },
    restart: { ...(f.restart ?? DEFAULT_RESTART) },
    drain: { ...(f.drain ?? DEFAULT_DRAIN) },
    usage: {
      dir: usageDir(env, f.usage?.dir, file ? f.file : null, process.cwd()),
      track: f.usage?.track ?? 'limited',
      flushInterval: f.usage?.flushInterval ?? DEFAULT_USAGE_FLUSH_INTERVAL,
    },
    log: { format: pick('logFormat', parseLogFormat, f.logFormat) ?? DEFAULTS.logFormat },
    environment: { ...f.environment },
    secrets: { values: keys.values, envNames },
    notes,
    extra: { ...f.extra },
  };
}
