// An unchanged LiteLLM proxy config (top-level `model_list`): what llmserve takes from it, and what it ignores.
import { configError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';
import { overridingMasterVariable, resolveEnvRef, type EnvRefContext } from './env-ref.js';
import { MASTER_KEY_ENV } from './defaults.js';
import { emptyFileSettings, type FileSettings } from './file-settings.js';
import { envValue } from './resolve.js';
import { asMap, at, expected, isMap, joinPath, kindOf, parsePort } from './values.js';

/** True when a document is a LiteLLM proxy config. */
export function isLiteLLMConfig(doc: Record<string, unknown>): boolean {
  // `include:` is LiteLLM's too: a parent whose models all live in included files has no model_list of its own.
  return 'model_list' in doc || 'include' in doc;
}

function backendPort(apiBase: unknown, where: string): number | undefined {
  if (apiBase === undefined || apiBase === null) return undefined;
  let url: URL;
  try {
    url = new URL(String(apiBase));
  } catch {
    throw expected(where, 'a URL like http://localhost:3000/v1', apiBase);
  }
  // Why: without a scheme, `localhost:8000/v1` parses as scheme "localhost:" with no port, which would mean 3000.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw expected(where, 'a URL like http://localhost:3000/v1', apiBase);
  // vLLM is always the local backend; a URL without a port means the backend default, 3000. The port is read from
  // the text: URL drops a scheme's default port (`http://localhost:80/v1` has port ''), which would mean 3000 too.
  const written = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/i.exec(String(apiBase))?.[1];
  if (written === undefined || written === '') return 3000;
  return parsePort(written, `${where} (its port)`);
}

/** The keys of a model_list entry (LiteLLM's). */
const ENTRY_KEYS = ['model_name', 'litellm_params', 'model_info'];

/**
 * An ignored key, with the key llmserve reads that it is a likely typo of. Why: LiteLLM ignores unknown keys and so
 * does llmserve, so a misspelt `general_settings` or `master_key` would silently drop the master key.
 */
function withGuess(key: string): string {
  const [section, sub] = key.startsWith('general_settings.') ? ['general_settings.', key.slice('general_settings.'.length)] : ['', key];
  const used = section === '' ? ['model_list', 'general_settings', 'environment_variables'] : ['master_key'];
  const guess = didYouMean(sub, used);
  return guess === undefined ? key : `${key} (did you mean ${section}${guess}?)`;
}

/**
 * `environment_variables`, read first: LiteLLM sets them before reading the rest, so os.environ/ may use them. A
 * variable already set (non-empty) in the environment is left out, and a note says so. Why: LiteLLM applies each as
 * `get_secret(NAME, default_value=VALUE)`, which reads os.environ first, so a set variable keeps its value (a master
 * key `os.environ/NAME` with NAME set by the deployment stays that key); vLLM then inherits that same value.
 */
function environmentVariables(doc: Record<string, unknown>, file: string, env: NodeJS.ProcessEnv, refs: Map<string, string>, notes: string[]): Record<string, string> {
  const vars = asMap(doc['environment_variables'], at(file, 'environment_variables'));
  const out: Record<string, string> = {};
  const kept: string[] = [];
  const empty: string[] = [];
  for (const [name, value] of Object.entries(vars)) {
    const path = `environment_variables.${name}`;
    // `REDIS_PASSWORD:` with nothing after it (a placeholder LiteLLM's own examples leave): no value to set.
    if (value === null || value === undefined) {
      empty.push(name);
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw expected(at(file, path), 'a string or a number', value);
    if (envValue(env, name) !== undefined) {
      kept.push(name);
      continue;
    }
    out[name] = String(resolveEnvRef(value, path, { env, file, refs }));
  }
  if (empty.length > 0) notes.push(`${file}: environment_variables: ${empty.join(', ')} ${empty.length === 1 ? 'has' : 'have'} no value: left as the environment has ${empty.length === 1 ? 'it' : 'them'}`);
  if (kept.length > 0) {
    notes.push(`${file}: environment_variables: ${kept.join(', ')} ${kept.length === 1 ? 'is' : 'are'} set in the environment, which wins as in LiteLLM: the file's value is used neither by os.environ/ nor by vLLM`);
  }
  return out;
}

/** The first model's public name and backend port; a note names the other models, which are not served. */
function readModelList(doc: Record<string, unknown>, file: string, ctx: EnvRefContext, out: FileSettings): void {
  const list = doc['model_list'];
  if (!Array.isArray(list) || list.length === 0) throw expected(at(file, 'model_list'), 'a non-empty list of models', list);
  const first = list[0];
  if (!isMap(first)) throw expected(at(file, 'model_list[0]'), 'a mapping with model_name and litellm_params', first);
  const name = resolveEnvRef(first['model_name'], 'model_list[0].model_name', ctx);
  if (typeof name !== 'string' || name.trim() === '') throw expected(at(file, 'model_list[0].model_name'), 'a non-empty string (the public model name)', name);
  // Why: `*` is LiteLLM's wildcard route (any name requested goes through); vLLM serves one model under the names it
  // is given, so `--served-model-name '*'` would answer 404 to every request while the probes say ready. The name
  // llmserve derives from --model is served instead, and resolveConfig says which.
  if (name.includes('*')) out.wildcardModelName = { name, where: at(file, 'model_list[0].model_name') };
  else out.servedModelName = name;
  // A misspelt litellm_params (or api_base in it) would leave the backend port silently at its default: said.
  const entryTypo = Object.keys(first).find((k) => !ENTRY_KEYS.includes(k) && didYouMean(k, ENTRY_KEYS) !== undefined);
  if (entryTypo !== undefined) out.notes.push(`${at(file, `model_list[0].${entryTypo}`)}: not a key LiteLLM or llmserve reads; did you mean ${didYouMean(entryTypo, ENTRY_KEYS)}? (its settings, api_base included, were not read)`);
  const params = asMap(first['litellm_params'], at(file, 'model_list[0].litellm_params'));
  const paramTypo = params['api_base'] === undefined ? Object.keys(params).find((k) => k !== 'api_base' && didYouMean(k, ['api_base']) !== undefined) : undefined;
  if (paramTypo !== undefined) out.notes.push(`${at(file, `model_list[0].litellm_params.${paramTypo}`)}: did you mean api_base? (without it the backend port is the default)`);
  const apiBase = resolveEnvRef(params['api_base'], 'model_list[0].litellm_params.api_base', ctx);
  const port = backendPort(apiBase, at(file, 'model_list[0].litellm_params.api_base'));
  if (port !== undefined) {
    out.vllm.port = port;
    out.vllm.portKey = 'model_list[0].litellm_params.api_base';
  }

  // The other entries: a name of the same backend (LiteLLM's usual `gpt-4o` -> `openai/<model>` on the same api_base)
  // is an alias of the served name, so that clients that call it keep working; the rest is named as not served. Read
  // leniently: an entry that is not served must not stop the start (an unset os.environ/ in it, a bad api_base).
  const servedBackend = backendKey(apiBase);
  const aliases = new Set<string>();
  const others = new Set<string>();
  list.forEach((entry, i) => {
    if (!isMap(entry)) throw expected(at(file, `model_list[${i}]`), 'a mapping with model_name and litellm_params', entry);
    if (i === 0) return;
    const lenient = (value: unknown, path: string): unknown => {
      try {
        return resolveEnvRef(value, path, ctx);
      } catch {
        return undefined;
      }
    };
    const other = lenient(entry['model_name'], `model_list[${i}].model_name`);
    const base = isMap(entry['litellm_params']) ? lenient(entry['litellm_params']['api_base'], `model_list[${i}].litellm_params.api_base`) : undefined;
    if (typeof other !== 'string' || other === '' || other === name) return;
    if (!name.includes('*') && servedBackend !== null && backendKey(base) === servedBackend) aliases.add(other);
    else others.add(other);
  });
  for (const alias of aliases) out.proxy.modelAliases[alias] = name;
  if (aliases.size > 0) {
    out.notes.push(`${file}: model_list: ${[...aliases].map((a) => `"${a}"`).join(', ')} ${aliases.size === 1 ? 'reaches' : 'reach'} the same vLLM as "${name}" (the same api_base): served as ${aliases.size === 1 ? 'an alias' : 'aliases'} of it`);
  }
  if (others.size > 0) {
    const served = name.includes('*') ? `(the wildcard "${name}")` : `"${name}"`;
    out.notes.push(`${file}: model_list names ${others.size + 1 + aliases.size} models; only the first, ${served}, is served${aliases.size > 0 ? ' with its aliases' : ''} (ignored: ${[...others].map((o) => `"${o}"`).join(', ')}: other backends)`);
  }
}

/** An api_base's host and port (`localhost:3000`), the backend it names; null when it names none or cannot be read. */
function backendKey(apiBase: unknown): string | null {
  if (typeof apiBase !== 'string') return null;
  try {
    const port = backendPort(apiBase, 'api_base');
    const host = new URL(apiBase).hostname.toLowerCase();
    // Every loopback spelling is this machine's vLLM.
    const local = host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '0.0.0.0';
    return `${local ? 'localhost' : host}:${port}`;
  } catch {
    return null;
  }
}

/** Per-deployment limits of LiteLLM's router, which llmserve does not apply (its keys' limits are `proxy.keys`). */
const DEPLOYMENT_LIMITS = ['rpm', 'tpm', 'max_parallel_requests'];

/**
 * The request timeout LiteLLM applied (`litellm_settings.request_timeout`, and the served entry's
 * `litellm_params.timeout`: the larger) as `proxy.first_byte_timeout`. Why: a non-streamed answer's head comes with its
 * last token, and llmserve's default (600 s) would cut, with a 504, a long generation LiteLLM waited for (its own
 * default is 6000 s). The section's other keys, and the served entry's rpm/tpm, are returned to be named as ignored.
 */
function readTimeouts(doc: Record<string, unknown>, file: string, out: FileSettings): string[] {
  const settings = doc['litellm_settings'];
  const ignored: string[] = [];
  let timeout: number | undefined;
  const consider = (value: unknown, where: string): void => {
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
    if (Number.isFinite(n) && n > 0) timeout = Math.max(timeout ?? 0, n);
    else if (value !== undefined && value !== null) ignored.push(where);
  };
  if (isMap(settings)) {
    for (const key of Object.keys(settings)) if (key !== 'request_timeout') ignored.push(joinPath('litellm_settings', key));
    consider(settings['request_timeout'], 'litellm_settings.request_timeout');
  } else if (settings !== undefined && settings !== null) ignored.push('litellm_settings');
  const first = Array.isArray(doc['model_list']) ? doc['model_list'][0] : undefined;
  const params = isMap(first) && isMap(first['litellm_params']) ? first['litellm_params'] : {};
  consider(params['timeout'], 'model_list[0].litellm_params.timeout');
  for (const key of DEPLOYMENT_LIMITS) if (params[key] !== undefined) ignored.push(`model_list[0].litellm_params.${key}`);
  if (timeout !== undefined) {
    out.proxy.firstByteTimeout = timeout;
    out.notes.push(`${file}: LiteLLM's request timeout (${timeout} s) is proxy.first_byte_timeout: a response that has not begun by then gets a 504`);
  }
  return ignored;
}

/**
 * router_settings.model_group_alias (`{alias: model_name}`, or `{alias: {model: model_name, hidden}}`): an alias of the
 * served name is one more alias of it, as LiteLLM routes it; the section's other keys are returned, to be named as
 * ignored, and so is an alias of a model that is not served.
 */
function readModelGroupAliases(doc: Record<string, unknown>, file: string, out: FileSettings): string[] {
  const router = doc['router_settings'];
  if (router === undefined || router === null) return [];
  if (!isMap(router)) return ['router_settings'];
  const ignored = Object.keys(router).filter((key) => key !== 'model_group_alias').map((key) => joinPath('router_settings', key));
  const groups = router['model_group_alias'];
  if (groups === undefined || groups === null) return ignored;
  if (!isMap(groups)) return [...ignored, 'router_settings.model_group_alias'];
  const served = out.servedModelName;
  const added: string[] = [];
  for (const [alias, value] of Object.entries(groups)) {
    const target = isMap(value) ? value['model'] : value;
    const to = typeof target === 'string' ? (target === served ? served : out.proxy.modelAliases[target]) : undefined;
    if (to === undefined || alias === served) ignored.push(joinPath('router_settings.model_group_alias', alias));
    else {
      out.proxy.modelAliases[alias] = to;
      added.push(alias);
    }
  }
  if (added.length > 0) out.notes.push(`${at(file, 'router_settings.model_group_alias')}: ${added.map((a) => `"${a}"`).join(', ')} served as ${added.length === 1 ? 'an alias' : 'aliases'} of "${served}"`);
  return ignored;
}

/** general_settings.master_key; the section's other keys are returned, to be named as ignored. */
function readGeneralSettings(doc: Record<string, unknown>, file: string, ctx: EnvRefContext, out: FileSettings): string[] {
  const ignored: string[] = [];
  const general = asMap(doc['general_settings'], at(file, 'general_settings'));
  for (const [key, value] of Object.entries(general)) {
    if (key !== 'master_key') {
      ignored.push(joinPath('general_settings', key));
      continue;
    }
    if (value === null || value === undefined) continue;
    const overriding = overridingMasterVariable(value, ctx.env, MASTER_KEY_ENV);
    if (overriding !== null) {
      out.notes.push(`${at(file, 'general_settings.master_key')}: ${String(value)} is not set; ${overriding}, which overrides it, is the master key`);
      continue;
    }
    const raw = resolveEnvRef(value, 'general_settings.master_key', ctx);
    if (typeof raw !== 'string' || raw === '') {
      throw configError(`${at(file, 'general_settings.master_key')}: expected a non-empty string (better: os.environ/NAME), got ${raw === '' ? 'an empty string' : kindOf(raw)}`);
    }
    const envName = ctx.refs.get('general_settings.master_key');
    out.proxy.masterKey = { value: raw, origin: at(file, 'general_settings.master_key'), ...(envName === undefined ? {} : { envName }) };
  }
  return ignored;
}

/**
 * Reads a LiteLLM config: model_list[0] (name, backend port), general_settings.master_key, environment_variables.
 * `origins` names the included file a section comes from (LiteLLM's include:), for the errors about it.
 */
export function parseLiteLLMConfig(doc: Record<string, unknown>, file: string, env: NodeJS.ProcessEnv, origins: Record<string, string> = {}): FileSettings {
  const out = emptyFileSettings(file, 'litellm');
  const refs = new Map<string, string>();
  const fileOf = (section: string): string => origins[section] ?? file;

  out.environment = environmentVariables(doc, fileOf('environment_variables'), env, refs, out.notes);
  if (fileOf('environment_variables') !== file) out.environmentFile = fileOf('environment_variables');
  // Only variables the environment lacks were kept: a set one is what os.environ/ reads, as in LiteLLM.
  const resolveEnv = { ...env, ...out.environment };
  readModelList(doc, fileOf('model_list'), { env: resolveEnv, file: fileOf('model_list'), refs }, out);
  const generalFile = fileOf('general_settings');
  // A master key belongs where the general_settings in effect is: one added to the parent's would be replaced.
  if (generalFile !== file) out.masterKeyFile = generalFile;
  const ignored = readGeneralSettings(doc, generalFile, { env: resolveEnv, file: generalFile, refs }, out);
  const routerIgnored = readModelGroupAliases(doc, fileOf('router_settings'), out);
  const settingsIgnored = readTimeouts(doc, fileOf('litellm_settings'), out);
  const handled = ['model_list', 'general_settings', 'environment_variables', 'router_settings', 'litellm_settings'];
  ignored.unshift(...Object.keys(doc).filter((key) => !handled.includes(key)).map((key) => joinPath('', key)), ...settingsIgnored, ...routerIgnored);
  if (ignored.length > 0) {
    const shown = ignored.map(withGuess);
    // A section an include: brought is named with its file: the top file does not hold it.
    const where = (key: string): string => {
      const from = fileOf(key.split(/[.[]/)[0] ?? key);
      return from === file ? '' : ` (in ${from})`;
    };
    out.notes.push(`${file}: LiteLLM settings that llmserve does not use were ignored: ${shown.map((text, i) => text + where(ignored[i]!)).join(', ')}`);
    const misspelt = shown.filter((text, i) => text !== ignored[i]);
    if (misspelt.length > 0) out.misspelt = misspelt;
  }
  out.envRefs = [...new Set(refs.values())];
  return out;
}
