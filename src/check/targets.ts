// Where `check` looks: the ports and key resolved exactly as `start` resolves them, the runtime file first.
import { readFile as fsReadFile } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, MASTER_KEY_ENV } from '../config/defaults.js';
import type { FileSettings } from '../config/file-settings.js';
import { configFileExists, locateConfig, readConfigText } from '../config/locate.js';
import { rawKeyEntry } from '../config/keys.js';
import { backendPortOrigin, envValue, FLAGS, masterKeyGiven, nameFromModel, pickSetting } from '../config/resolve.js';
import type { CliOptions, KeyEntry } from '../config/types.js';
import { modelBackendPort } from '../config/models.js';
import { parseBindHost, parsePort, parseString } from '../config/values.js';
import { ownerOf, readRuntimeFile, RUNTIME_FILE, type RuntimeInfo } from '../supervisor/runtime-file.js';
import { fallbackKeys, firstUsableKey, isThrottled, rawKeyCandidates, type KeyCandidate } from './key-choice.js';
import { isLocalAddress } from './local-address.js';
import { standInValues, unsetReferences } from './stand-ins.js';
import type { CheckTargets } from './types.js';
import { workingDir } from '../util/cwd.js';
import { configError } from '../errors.js';

/** Side effects of resolving the targets; each has a real default. */
export interface TargetDeps {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  readFile?: (p: string) => Promise<string>;
  exists?: (p: string) => Promise<boolean>;
  /** Reads the configuration file's settings; loads the YAML parser only when a file must be read. */
  parseConfigFile?: (text: string, file: string, env: NodeJS.ProcessEnv) => Promise<FileSettings>;
  /** Reads a keys file: its entries (names, digests, policies) and raw key values. */
  readKeysFile?: (file: string, env: NodeJS.ProcessEnv) => Promise<{ entries: KeyEntry[]; values: string[] }>;
  /** The time, in ms since the epoch, against which keys' `expires` is judged. */
  now?: () => number;
  /** The runtime file's info when the llmserve that wrote it still runs, else null (runtime-file.ts ownerOf). */
  runtimeOwner?: (info: RuntimeInfo | null) => RuntimeInfo | null;
}

// node:fs, not node:fs/promises: it is loaded at Node's start anyway, so `check` saves a module load.
const realReadFile = (p: string) => new Promise<string>((resolve, reject) => fsReadFile(p, 'utf8', (err, text) => (err ? reject(err) : resolve(text))));

// Loaded lazily: the YAML parser is the heaviest thing `check` could import, and most probe scripts need none.
const lazyParseConfig = async (text: string, file: string, env: NodeJS.ProcessEnv) => (await import('../config/load.js')).parseConfigFileText(text, file, env);
const lazyReadKeysFile = async (file: string, env: NodeJS.ProcessEnv) => (await import('../config/keys-file.js')).readKeysFile(file, { env });

// `check` writes no runtime file, so none is its own: no pid is excluded.
const liveOwner = (info: RuntimeInfo | null) => ownerOf(info, 0);

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
  const cwd = deps.cwd ?? workingDir();
  const readFile = deps.readFile ?? realReadFile;
  const located = await locateConfig(cli, env, cwd, deps.exists ?? configFileExists);
  let file: FileSettings | null = null;
  // Values that stand for variables unset here, and the reason the authenticated check is skipped for them.
  let standIns = new Set<string>();
  let unsetNote: string | null = null;
  // With stand-ins: the file read with this environment, whose error is the one given where check needs a value that
  // only a stand-in gave (the probe directory, a model's name), or where the file does not load even with them.
  let strictRead: (() => Promise<never>) | null = null;
  if (located) {
    const text = await readConfigText(located, readFile);
    const parse = deps.parseConfigFile ?? lazyParseConfig;
    const unset = unsetReferences(text, env);
    if (unset.length === 0) file = await parse(text, located.path, env);
    else {
      // Why not an error: start had these variables; check, run from elsewhere (or on a Ray worker, which needs none
      // of the head's keys), must still find the ports and judge what it can. Keys holding a stand-in are dropped.
      const read = async (): Promise<never> => {
        await parse(text, located.path, env);
        throw configError(`${located.path}: a setting check needs is read from a variable that is not set here; export it for check too`);
      };
      strictRead = read;
      const values = standInValues(unset);
      file = await parse(text, located.path, { ...env, ...values }).catch(read);
      standIns = new Set(Object.values(values));
      const master = MASTER_KEY_ENV[0] ?? 'LLMSERVE_MASTER_KEY';
      unsetNote = `${unset.join(', ')} ${unset.length === 1 ? 'is' : 'are'} not set here (the config file ${located.path} reads ${unset.length === 1 ? 'it' : 'them'} with os.environ/): export ${unset.length === 1 ? 'it' : 'them'} for check too${unset.includes(master) ? '' : `, or set ${master}`}`;
    }
  }

  /** flag > env > file, parsed, exactly as start's resolveConfig picks a setting. */
  const pick = <T>(flag: keyof typeof FLAGS, parse: (v: unknown, where: string) => T, fromFile: T | undefined): T | undefined => pickSetting(cli, env, flag, parse, fromFile);
  const flag = <T>(name: keyof typeof FLAGS, parse: (v: unknown, where: string) => T): T | undefined => (cli[name] === undefined ? undefined : parse(cli[name], FLAGS[name][0]));
  const str = (v: unknown, w: string) => parseString(v, w);

  // A stand-in where check needs the real value (the probe directory, a model's name): the error start would give.
  const holdsStandIn = (value: unknown) => typeof value === 'string' && [...standIns].some((s) => value.includes(s));
  const needed = async <T>(value: T): Promise<T> => (strictRead !== null && holdsStandIn(value) ? strictRead() : value);
  const probeDir = path.resolve(cwd, (await needed(pick('probeDir', str, file?.probes.dir))) ?? DEFAULTS.probeDir);
  // Only a runtime file that a running llmserve wrote (the check start makes before it takes a probe directory): the
  // key goes where the file says, and a file left by a dead one, or planted in a shared directory, must not send it
  // to whatever now listens on that port.
  const runtime = (deps.runtimeOwner ?? liveOwner)(readRuntimeFile(probeDir));

  const production = envValue(env, 'OPENBAYES_SERVING_PRODUCTION') !== undefined;
  const filePort = file?.proxy.port === 'auto' ? undefined : file?.proxy.port;
  const port = flag('port', parsePort) ?? runtime?.proxy.port ?? pick('port', parsePort, filePort) ?? (production ? DEFAULTS.proxyPortProduction : DEFAULTS.proxyPort);
  // start writes its bind address, one of this machine's: a runtime file naming another host was not written by it
  // (a shared probe directory), and the key must never follow it there.
  const runtimeHost = runtime !== null && isLocalAddress(runtime.proxy.host) ? runtime.proxy.host : undefined;
  const host = flag('host', parseBindHost) ?? runtimeHost ?? pick('host', parseBindHost, file?.proxy.host) ?? DEFAULTS.proxyHost;
  const tls = runtime?.proxy.tls ?? (file?.proxy.tls !== undefined && file.proxy.tls !== null);
  // Several models and no runtime file: each entry's port and name as start resolves them (resolve.ts).
  const firstPort = pick('backendPort', parsePort, file?.vllm.port) ?? DEFAULTS.vllmPort;
  const fileBackends = file === null || file.models === undefined ? [] : file.models.map((m, i) => ({
    host: '127.0.0.1',
    port: modelBackendPort(m.port, firstPort, i, file.file, backendPortOrigin(cli, env, file.vllm.port !== undefined)),
    model: m.servedModelName ?? nameFromModel(m.model),
  }));
  const backendPort = flag('backendPort', parsePort) ?? runtime?.backend.port ?? fileBackends[0]?.port ?? firstPort;
  const backendHost = runtime?.backend.host ?? '127.0.0.1';
  const modelPath = pick('model', str, file?.model);
  const model = await needed(flag('servedModelName', str) ?? runtime?.models?.[0] ?? fileBackends[0]?.model ?? pick('servedModelName', str, file?.servedModelName) ?? (modelPath === undefined ? null : nameFromModel(modelPath)));
  const backends = runtime !== null ? runtime.backends : fileBackends.length > 1 ? fileBackends : undefined;

  // The key, in start's order: the master key (environment, else file), the file's named raw keys, the keys file's;
  // the first one the proxy would accept now for this model, so that a disabled or expired key never fails a probe.
  const auth = file?.proxy.auth ?? true;
  let key: string | null = null;
  let fallbacks: string[] = [];
  let skipAuthenticated: string | null = null;
  if (auth) {
    const now = (deps.now ?? Date.now)();
    // start's master key, checked as start checks it: a key start would refuse is an error here too (exit 2), not
    // a request sent with it (a CR or LF in it would even split that request's head).
    const given = masterKeyGiven(env, file);
    const master = given === undefined || standIns.has(given.raw) ? undefined : rawKeyEntry('master', given.raw, given.origin).value;
    const policy = file?.proxy.masterPolicy;
    const candidates: KeyCandidate[] = master === undefined ? [] : [{ name: 'master', value: master, ...(policy === undefined ? {} : { policy }) }];
    if (file) candidates.push(...(await rawKeyCandidates(file.proxy.keys)).filter((c) => !standIns.has(c.value)));
    let digests = file?.proxy.keys.entries.filter((e) => e.digestOnly).length ?? 0;
    let choice = firstUsableKey(candidates, model, now);
    let unreadable: string | null = null;
    // The keys file too when no configured key is usable, or only a metered one is (a master key with master_limits,
    // whose quota clients spend: a probe would then get 429s): an unmetered key of the file goes first.
    const metered = choice.key !== null && candidates.some((c) => c.value === choice.key && isThrottled(c));
    // A keys file whose path is read from a variable unset here is not read (its absence is said with the others).
    if ((choice.key === null || metered) && file?.proxy.keysFile !== undefined && !holdsStandIn(file.proxy.keysFile)) {
      // The file as it is on disk now, which may not be what the proxy loaded: one caught mid-edit is no reason to
      // fail (the proxy keeps the keys it loaded), and a key added before its SIGHUP is tried with others after it.
      const fromFile = await (deps.readKeysFile ?? lazyReadKeysFile)(file.proxy.keysFile, env).catch((err: Error) => {
        if (!metered) unreadable = `the keys file ${file.proxy.keysFile} cannot be read now (${err.message}); the proxy keeps the keys it loaded`;
        return null;
      });
      if (fromFile !== null) {
        const configured = choice.key;
        const all = [...candidates, ...(await rawKeyCandidates(fromFile))];
        choice = firstUsableKey(all, model, now);
        if (choice.key !== null) fallbacks = fallbackKeys(all, choice.key, model, now);
        // The metered configured key, which the proxy surely has, is always the last one tried: keys new to the file
        // (three or more before a SIGHUP) must not crowd it out and fail the check with 401s.
        if (metered && configured !== null && choice.key !== configured) fallbacks = [...fallbacks.filter((k) => k !== configured), configured];
        digests += fromFile.entries.filter((e) => e.digestOnly).length;
      }
    }
    key = choice.key;
    if (key === null && unreadable !== null) skipAuthenticated = unreadable;
    else if (key === null) {
      if (choice.passed.length > 0) {
        const others = digests > 0 ? '; the other keys are digests only (key_sha256), their raw key unknown to llmserve' : '';
        skipAuthenticated = `no usable raw key: the proxy would refuse each one known (${choice.passed.join('; ')})${others}`;
      } else {
        skipAuthenticated = unsetNote !== null
          ? `no key known: ${unsetNote}`
          : digests > 0
          ? 'only key digests (key_sha256) are configured: the raw key is unknown to llmserve'
          : `no key known: set ${MASTER_KEY_ENV[0] ?? 'LLMSERVE_MASTER_KEY'} (or the config's master key) for check too`;
      }
    }
  }
  return {
    proxy: { host: connectHost(host), port, tls },
    backend: { host: connectHost(backendHost), port: backendPort },
    ...(backends !== undefined && backends.length > 1 && flag('backendPort', parsePort) === undefined
      ? { backends: backends.map((b) => ({ host: connectHost(b.host), port: b.port, model: b.model })), require: runtime?.require ?? file?.probes.require ?? 'all' }
      : {}),
    model,
    key,
    ...(fallbacks.length > 0 ? { fallbackKeys: fallbacks } : {}),
    auth,
    skipAuthenticated,
    runtimeFile: runtime ? path.join(probeDir, RUNTIME_FILE) : null,
    ...(runtime?.role === 'worker' ? { worker: { pid: runtime.pid, head: runtime.head ?? 'its head' } } : {}),
    probeDir,
  };
}
