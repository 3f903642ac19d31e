// llmserve's own YAML format: known keys, their types, and did-you-mean for unknown ones.
import { dirname, resolve as resolvePath } from 'node:path';
import { configError } from '../errors.js';
import { MASTER_KEY_ENV, RESERVED_TOP_KEYS } from './defaults.js';
import { didYouMean } from './did-you-mean.js';
import { overridingMasterVariable, resolveEnvRefs } from './env-ref.js';
import { vllmKeyHint } from './vllm-flag-hint.js';
import { emptyFileSettings, type FileSettings } from './file-settings.js';
import { parseKeyList } from './keys.js';
import { parseMasterLimits } from './key-policy.js';
import { USAGE_KEYS, parseUsage } from './usage-settings.js';
import { parseModels, parseRequire } from './models.js';
import { DRAIN_KEYS, RESTART_KEYS, parseDrain, parseRestart } from './reliability.js';
import {
  asMap, at, expected, joinPath, parseBindHost, parseBool, parsePort, parsePortOrAuto, parseSeconds, parseSize, parseString,
  parseTensorParallel, parseLogFormat, isMap, kindOf, parseWorkers, parseNonNegativeSeconds,
} from './values.js';

/** Known keys per section ('' = top level). */
export const SCHEMA: Readonly<Record<string, readonly string[]>> = {
  '': [
    'model', 'served_model_name', 'vllm', 'proxy', 'probes', 'startup_timeout', 'stop_timeout', 'stall_timeout', 'engine_stall_timeout', 'restart', 'drain', 'usage',
    'log_format', 'models', 'ray', ...RESERVED_TOP_KEYS,
  ],
  vllm: ['command', 'port', 'tensor_parallel_size', 'args', 'env', 'access_log'],
  proxy: [
    'port', 'host', 'master_key', 'auth', 'keys', 'keys_file', 'routes', 'model_aliases', 'max_body_bytes',
    'first_byte_timeout', 'headers_timeout', 'body_timeout', 'keep_alive_timeout', 'tls', 'log_health', 'master_limits', 'metrics_port',
    'workers',
  ],
  'proxy.tls': ['cert', 'key'],
  probes: ['dir', 'interval', 'require'],
  ray: ['command'],
  restart: RESTART_KEYS,
  drain: DRAIN_KEYS,
  usage: USAGE_KEYS,
};

const LITELLM_SECTIONS = ['general_settings', 'litellm_settings', 'router_settings', 'environment_variables'];

/** Checks every section of a document for unknown keys, before any value is read. */
export function checkDocument(doc: Record<string, unknown>, file: string): void {
  for (const path of Object.keys(SCHEMA)) {
    let section: unknown = doc;
    for (const part of path ? path.split('.') : []) section = isMap(section) ? section[part] : undefined;
    if (isMap(section)) checkKnownKeys(section, path, file);
  }
}

/** Throws on the first key of a section that the schema does not know, suggesting the closest known one. */
export function checkKnownKeys(section: Record<string, unknown>, path: string, file: string): void {
  const known = SCHEMA[path] ?? [];
  for (const key of Object.keys(section)) {
    if (known.includes(key)) continue;
    const guess = didYouMean(key, known);
    let hint = guess ? `did you mean "${guess}"?` : `known keys here: ${known.join(', ')}`;
    if (path === 'vllm' && !guess) hint += `; ${vllmKeyHint(key, section[key], 'vllm.args')}`;
    if (!path && LITELLM_SECTIONS.includes(key)) hint = 'this is a LiteLLM section, but a LiteLLM config needs a top-level model_list';
    // A misspelt model_list (`modellist`) makes a LiteLLM config read as llmserve's: `models` would be a wrong guess.
    else if (!path && didYouMean(key, ['model_list']) !== undefined) hint = 'did you mean "model_list" (a LiteLLM config\'s list of models)?';
    throw configError(`${at(file, joinPath(path, key))}: unknown key; ${hint}`);
  }
}

function stringList(value: unknown, where: string, what: string): string[] {
  if (!Array.isArray(value)) throw expected(where, what, value);
  return value.map((item, i) => {
    if (typeof item === 'string') return item;
    if (typeof item === 'number') return String(item);
    throw expected(`${where}[${i}]`, 'a string or a number', item);
  });
}

function stringMap(value: unknown, where: string, allowScalars: boolean): Record<string, string> {
  const map = asMap(value, where);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) {
    if (typeof v === 'string') out[k] = v;
    else if (allowScalars && (typeof v === 'number' || typeof v === 'boolean')) out[k] = String(v);
    else throw expected(`${where}.${k}`, allowScalars ? 'a string or a number' : 'a string', v);
  }
  return out;
}

function command(value: unknown, where: string): string[] {
  const argv = typeof value === 'string' ? value.trim().split(/\s+/).filter(Boolean) : Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
  if (!argv || argv.length === 0) throw expected(where, 'a command: a string like "vllm serve" or a list like [python, -m, vllm.entrypoints.openai.api_server]', value);
  return argv;
}

function routes(value: unknown, where: string): string[] {
  const list = stringList(value, where, 'a list of paths like /v1/chat/completions or prefixes like /v1/audio/*');
  list.forEach((route, i) => {
    const star = route.indexOf('*');
    if (!route.startsWith('/') || (star >= 0 && (star !== route.length - 1 || !route.endsWith('/*')))) {
      throw expected(`${where}[${i}]`, 'a path starting with / (a prefix ends in /*)', route);
    }
  });
  return list;
}

/** Present = not undefined and not null (an empty YAML value means "not set"). */
const has = (map: Record<string, unknown>, key: string): boolean => map[key] !== undefined && map[key] !== null;

/** Validates a document in llmserve's format (os.environ/ read everywhere) into FileSettings. */
export function parseLlmserveConfig(doc: Record<string, unknown>, file: string, env: NodeJS.ProcessEnv): FileSettings {
  checkDocument(doc, file);
  const refs = new Map<string, string>();
  const proxySection = isMap(doc['proxy']) ? doc['proxy'] : undefined;
  const overriding = overridingMasterVariable(proxySection?.['master_key'], env, MASTER_KEY_ENV);
  // An unset master key variable that the environment's master key overrides anyway is not read (env-ref.ts).
  const read = overriding === null ? doc : { ...doc, proxy: Object.fromEntries(Object.entries(proxySection!).filter(([k]) => k !== 'master_key')) };
  const root = asMap(resolveEnvRefs(read, '', { env, file, refs }), file);
  const out = emptyFileSettings(file, 'llmserve');
  if (overriding !== null) out.notes.push(`${at(file, 'proxy.master_key')}: ${String(proxySection!['master_key'])} is not set; ${overriding}, which overrides it, is the master key`);
  const w = (path: string): string => at(file, path);

  if (has(root, 'model')) out.model = parseString(root['model'], w('model'), 'a model path or hub id');
  if (has(root, 'served_model_name')) out.servedModelName = parseString(root['served_model_name'], w('served_model_name'));
  if (has(root, 'startup_timeout')) out.startupTimeout = parseSeconds(root['startup_timeout'], w('startup_timeout'));
  if (has(root, 'stop_timeout')) out.stopTimeout = parseSeconds(root['stop_timeout'], w('stop_timeout'));
  if (has(root, 'stall_timeout')) out.stallTimeout = parseSeconds(root['stall_timeout'], w('stall_timeout'));
  if (has(root, 'engine_stall_timeout')) out.engineStallTimeout = parseNonNegativeSeconds(root['engine_stall_timeout'], w('engine_stall_timeout'));
  if (has(root, 'restart')) out.restart = parseRestart(root['restart'], file);
  if (has(root, 'drain')) out.drain = parseDrain(root['drain'], file);
  if (has(root, 'usage')) out.usage = parseUsage(root['usage'], file);
  if (has(root, 'log_format')) out.logFormat = parseLogFormat(root['log_format'], w('log_format'));
  for (const key of RESERVED_TOP_KEYS) if (root[key] !== undefined) out.extra[key] = root[key];

  const vllm = asMap(root['vllm'], w('vllm'));
  if (has(vllm, 'command')) out.vllm.command = command(vllm['command'], w('vllm.command'));
  if (has(vllm, 'port')) out.vllm.port = parsePort(vllm['port'], w('vllm.port'));
  if (has(vllm, 'tensor_parallel_size')) out.vllm.tensorParallelSize = parseTensorParallel(vllm['tensor_parallel_size'], w('vllm.tensor_parallel_size'));
  if (has(vllm, 'args')) out.vllm.args = stringList(vllm['args'], w('vllm.args'), 'a list of strings (vLLM flags)');
  if (has(vllm, 'env')) out.vllm.env = stringMap(vllm['env'], w('vllm.env'), true);
  if (has(vllm, 'access_log')) out.vllm.accessLog = parseBool(vllm['access_log'], w('vllm.access_log'));

  const proxy = asMap(root['proxy'], w('proxy'));
  const p = out.proxy;
  if (has(proxy, 'port')) p.port = parsePortOrAuto(proxy['port'], w('proxy.port'));
  if (has(proxy, 'host')) p.host = parseBindHost(proxy['host'], w('proxy.host'));
  if (has(proxy, 'auth')) p.auth = parseBool(proxy['auth'], w('proxy.auth'));
  if (has(proxy, 'master_key')) {
    const raw = proxy['master_key'];
    if (typeof raw !== 'string' || raw === '') {
      throw configError(`${w('proxy.master_key')}: expected a non-empty string (better: os.environ/NAME), got ${raw === '' ? 'an empty string' : kindOf(raw)}; quote keys that look like numbers`);
    }
    const envName = refs.get('proxy.master_key');
    p.masterKey = { value: raw, origin: w('proxy.master_key'), ...(envName === undefined ? {} : { envName }) };
  }
  p.keys = parseKeyList(proxy['keys'], file, 'proxy.keys', refs);
  if (has(proxy, 'keys_file')) p.keysFile = resolvePath(dirname(file), parseString(proxy['keys_file'], w('proxy.keys_file'), 'a file path'));
  if (has(proxy, 'routes')) p.routes = routes(proxy['routes'], w('proxy.routes'));
  if (has(proxy, 'model_aliases')) p.modelAliases = stringMap(proxy['model_aliases'], w('proxy.model_aliases'), false);
  if (has(proxy, 'max_body_bytes')) p.maxBodyBytes = parseSize(proxy['max_body_bytes'], w('proxy.max_body_bytes'));
  if (has(proxy, 'first_byte_timeout')) p.firstByteTimeout = parseSeconds(proxy['first_byte_timeout'], w('proxy.first_byte_timeout'));
  if (has(proxy, 'headers_timeout')) p.headersTimeout = parseSeconds(proxy['headers_timeout'], w('proxy.headers_timeout'));
  if (has(proxy, 'body_timeout')) p.bodyTimeout = parseSeconds(proxy['body_timeout'], w('proxy.body_timeout'));
  if (has(proxy, 'keep_alive_timeout')) p.keepAliveTimeout = parseSeconds(proxy['keep_alive_timeout'], w('proxy.keep_alive_timeout'));
  if (has(proxy, 'log_health')) p.logHealth = parseBool(proxy['log_health'], w('proxy.log_health'));
  if (has(proxy, 'master_limits')) {
    const policy = parseMasterLimits(proxy['master_limits'], file);
    if (policy !== undefined) p.masterPolicy = policy;
  }
  if (has(proxy, 'metrics_port')) p.metricsPort = parsePort(proxy['metrics_port'], w('proxy.metrics_port'));
  if (has(proxy, 'workers')) p.workers = parseWorkers(proxy['workers'], w('proxy.workers'));
  if (has(proxy, 'tls')) {
    const tls = asMap(proxy['tls'], w('proxy.tls'));
    const cert = has(tls, 'cert') ? parseString(tls['cert'], w('proxy.tls.cert'), 'a file path') : undefined;
    const key = has(tls, 'key') ? parseString(tls['key'], w('proxy.tls.key'), 'a file path') : undefined;
    if ((cert === undefined) !== (key === undefined)) {
      throw configError(`${w('proxy.tls')}: set both cert and key (or neither), got only ${cert === undefined ? 'key' : 'cert'}`);
    }
    p.tls = cert !== undefined && key !== undefined ? { cert: resolvePath(dirname(file), cert), key: resolvePath(dirname(file), key) } : null;
  }

  const probes = asMap(root['probes'], w('probes'));
  if (has(probes, 'dir')) out.probes.dir = parseString(probes['dir'], w('probes.dir'), 'a directory path');
  if (has(probes, 'interval')) out.probes.interval = parseSeconds(probes['interval'], w('probes.interval'));
  if (has(probes, 'require')) out.probes.require = parseRequire(probes['require'], w('probes.require'));

  const models = parseModels(root['models'], file, stringList, (v, where) => stringMap(v, where, true));
  if (models !== undefined) {
    if (out.model !== undefined) throw configError(`${file}: model and models are both set; use model: for one model, or a models: list (each entry with its own model:), not both`);
    out.models = models;
  }
  const ray = asMap(root['ray'], w('ray'));
  if (has(ray, 'command')) out.ray.command = command(ray['command'], w('ray.command'));
  out.envRefs = [...new Set(refs.values())];
  return out;
}
