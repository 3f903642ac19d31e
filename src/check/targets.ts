// Where `check` looks: the ports and key resolved exactly as `start` resolves them, the runtime file first.
import { existsSync, readFile as fsReadFile } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, MASTER_KEY_ENV } from '../config/defaults.js';
import type { FileSettings } from '../config/file-settings.js';
import { locateConfig, readConfigText } from '../config/locate.js';
import { envValue, FLAGS, nameFromModel } from '../config/resolve.js';
import type { CliOptions } from '../config/types.js';
import { parsePort, parseString } from '../config/values.js';
import { readRuntimeFile, RUNTIME_FILE } from '../supervisor/runtime-file.js';
import type { CheckTargets } from './types.js';

/** Side effects of resolving the targets; each has a real default. */
export interface TargetDeps {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  readFile?: (p: string) => Promise<string>;
  exists?: (p: string) => Promise<boolean>;
  /** Reads the configuration file's settings; loads the YAML parser only when a file must be read. */
  parseConfigFile?: (text: string, file: string, env: NodeJS.ProcessEnv) => Promise<FileSettings>;
  /** Reads the raw keys of a keys file. */
  readKeysFile?: (file: string, env: NodeJS.ProcessEnv) => Promise<{ values: string[]; digests: number }>;
}

// node:fs, not node:fs/promises: it is loaded at Node's start anyway, so `check` saves a module load.
const realExists = (p: string) => Promise.resolve(existsSync(p));
const realReadFile = (p: string) => new Promise<string>((resolve, reject) => fsReadFile(p, 'utf8', (err, text) => (err ? reject(err) : resolve(text))));

// Loaded lazily: the YAML parser is the heaviest thing `check` could import, and most probe scripts need none.
const lazyParseConfig = async (text: string, file: string, env: NodeJS.ProcessEnv) => (await import('../config/load.js')).parseConfigText(text, file, env);
const lazyReadKeysFile = async (file: string, env: NodeJS.ProcessEnv) => {
  const keys = await (await import('../config/keys-file.js')).readKeysFile(file, { env });
  return { values: keys.values, digests: keys.entries.filter((e) => e.digestOnly).length };
};

/** The address to connect to for a bind address: the wildcard ones mean this machine. */
export function connectHost(bind: string): string {
  return bind === '0.0.0.0' || bind === '::' || bind === '' ? '127.0.0.1' : bind;
}

/**
 * Resolves the check's targets. Precedence: check's own flags > the runtime file that a running `start` wrote
 * into the probe directory > environment (LLMSERVE_*, OPENBAYES_SERVING_PRODUCTION) > config file > defaults,
 * which is `start`'s order with the runtime file (what `start` actually used) slotted in after the flags.
 */
export async function resolveCheckTargets(cli: CliOptions, deps: TargetDeps = {}): Promise<CheckTargets> {
  const env = deps.env ?? process.env;
  const cwd = deps.cwd ?? process.cwd();
  const readFile = deps.readFile ?? realReadFile;
  const located = await locateConfig(cli, env, cwd, deps.exists ?? realExists);
  let file: FileSettings | null = null;
  if (located) {
    const text = await readConfigText(located, readFile);
    file = await (deps.parseConfigFile ?? lazyParseConfig)(text, located.path, env);
  }

  /** flag > env > file, parsed, exactly as start's resolveConfig picks a setting. */
  const pick = <T>(flag: keyof typeof FLAGS, parse: (v: unknown, where: string) => T, fromFile: T | undefined): T | undefined => {
    const [flagName, envName] = FLAGS[flag];
    const cliValue = cli[flag];
    if (cliValue !== undefined) return parse(cliValue, flagName);
    const e = envValue(env, envName);
    return e !== undefined ? parse(e, envName) : fromFile;
  };
  const flag = <T>(name: keyof typeof FLAGS, parse: (v: unknown, where: string) => T): T | undefined => (cli[name] === undefined ? undefined : parse(cli[name], FLAGS[name][0]));
  const str = (v: unknown, w: string) => parseString(v, w);

  const probeDir = path.resolve(cwd, pick('probeDir', str, file?.probes.dir) ?? DEFAULTS.probeDir);
  const runtime = readRuntimeFile(probeDir);

  const production = envValue(env, 'OPENBAYES_SERVING_PRODUCTION') !== undefined;
  const filePort = file?.proxy.port === 'auto' ? undefined : file?.proxy.port;
  const port = flag('port', parsePort) ?? runtime?.proxy.port ?? pick('port', parsePort, filePort) ?? (production ? DEFAULTS.proxyPortProduction : DEFAULTS.proxyPort);
  const host = flag('host', str) ?? runtime?.proxy.host ?? pick('host', str, file?.proxy.host) ?? DEFAULTS.proxyHost;
  const tls = runtime?.proxy.tls ?? (file?.proxy.tls !== undefined && file.proxy.tls !== null);
  const backendPort = flag('backendPort', parsePort) ?? runtime?.backend.port ?? pick('backendPort', parsePort, file?.vllm.port) ?? DEFAULTS.vllmPort;
  const backendHost = runtime?.backend.host ?? '127.0.0.1';
  const modelPath = pick('model', str, file?.model);
  const model = flag('servedModelName', str) ?? runtime?.models?.[0] ?? pick('servedModelName', str, file?.servedModelName) ?? (modelPath === undefined ? null : nameFromModel(modelPath));

  // The key, as start takes it: the master key from the environment, else from the file, else a named raw key.
  const auth = file?.proxy.auth ?? true;
  let key: string | null = null;
  let skipAuthenticated: string | null = null;
  if (auth) {
    const envMaster = MASTER_KEY_ENV.map((n) => envValue(env, n)).find((v) => v !== undefined);
    key = envMaster ?? file?.proxy.masterKey?.value ?? file?.proxy.keys.values[0] ?? null;
    let digests = file?.proxy.keys.entries.filter((e) => e.digestOnly).length ?? 0;
    if (key === null && file?.proxy.keysFile !== undefined) {
      const fromFile = await (deps.readKeysFile ?? lazyReadKeysFile)(file.proxy.keysFile, env);
      key = fromFile.values[0] ?? null;
      digests += fromFile.digests;
    }
    if (key === null) {
      skipAuthenticated = digests > 0
        ? 'only key digests (key_sha256) are configured: the raw key is unknown to llmserve'
        : `no key known: set ${MASTER_KEY_ENV[0] ?? 'LLMSERVE_MASTER_KEY'} (or the config's master key) for check too`;
    }
  }
  return {
    proxy: { host: connectHost(host), port, tls },
    backend: { host: connectHost(backendHost), port: backendPort },
    ...(runtime?.backends !== undefined && runtime.backends.length > 1 && flag('backendPort', parsePort) === undefined
      ? { backends: runtime.backends.map((b) => ({ host: connectHost(b.host), port: b.port, model: b.model })) }
      : {}),
    model,
    key,
    auth,
    skipAuthenticated,
    runtimeFile: runtime ? path.join(probeDir, RUNTIME_FILE) : null,
  };
}
