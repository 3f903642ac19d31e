// `models:` (several models on one node), `probes.require` and `ray:`: the file side, validated.
import { configError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';
import { vllmKeyHint } from './vllm-flag-hint.js';
import { at, expected, isMap, joinPath, parsePort, parsePositiveInt, parseString, parseTensorParallel } from './values.js';

/** One `models:` entry as the file gives it (undefined = not set there). */
export interface ModelFileEntry {
  model: string;
  servedModelName?: string;
  /** nvidia-smi indices, or a count allocated in order. */
  gpus?: number[] | number;
  port?: number;
  tensorParallelSize?: number | 'auto';
  args: string[];
  env: Record<string, string>;
}

const ENTRY_KEYS: readonly string[] = ['model', 'served_model_name', 'gpus', 'port', 'vllm'];
// `port` here too: the single-model config spells the backend port `vllm.port`, and an entry takes the same keys.
const ENTRY_VLLM_KEYS: readonly string[] = ['tensor_parallel_size', 'args', 'env', 'port'];

function checkKeys(map: Record<string, unknown>, known: readonly string[], where: string, argsPath?: string): void {
  for (const key of Object.keys(map)) {
    if (known.includes(key)) continue;
    const guess = didYouMean(key, known);
    const vllmHint = argsPath !== undefined && !guess ? `; ${vllmKeyHint(key, map[key], argsPath)}` : '';
    throw configError(`${joinPath(where, key)}: unknown key; ${guess ? `did you mean "${guess}"?` : `known keys here: ${known.join(', ')}`}${vllmHint}`);
  }
}

function gpuList(value: unknown, where: string): number[] | number {
  if (!Array.isArray(value)) return parsePositiveInt(value, where);
  if (value.length === 0) throw expected(where, 'a non-empty list of GPU indices (as nvidia-smi numbers them) or a count', value);
  const seen = new Set<number>();
  return value.map((v, i) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0) throw expected(`${where}[${i}]`, 'a GPU index (0, 1, ...)', v);
    if (seen.has(n)) throw configError(`${where}: GPU ${n} is listed twice`);
    seen.add(n);
    return n;
  });
}

/**
 * The backend port of `models[i]`: its own `port`, else the first backend port plus `i`; a derived port past 65535
 * is the configuration's error (`firstFrom` names where the first port came from: a flag, a variable, `vllm.port`).
 */
export function modelBackendPort(own: number | undefined, first: number, i: number, file: string, firstFrom: string): number {
  if (own !== undefined) return own;
  const port = first + i;
  if (port > 65535) throw configError(`${at(file, `models[${i}]`)}: no port of its own, so it would take ${firstFrom} + ${i} = ${port}, past 65535; set models[${i}].port, or a lower ${firstFrom}`);
  return port;
}

/**
 * Parses `models:`; `strings` and `envMap` are the schema's own list and map validators. An empty list or an
 * absent key is "not set" (undefined).
 */
export function parseModels(
  value: unknown,
  file: string,
  strings: (v: unknown, where: string, what: string) => string[],
  envMap: (v: unknown, where: string) => Record<string, string>,
): ModelFileEntry[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw expected(at(file, 'models'), 'a list of models (each with model:, gpus:, ...)', value);
  if (value.length === 0) return undefined;
  return value.map((raw, i) => {
    const w = at(file, `models[${i}]`);
    if (!isMap(raw)) throw expected(w, 'a mapping with model:, served_model_name:, gpus:, port:, vllm:', raw);
    checkKeys(raw, ENTRY_KEYS, w);
    const entry: ModelFileEntry = { model: parseString(raw['model'], `${w}.model`, 'a model path or hub id'), args: [], env: {} };
    if (raw['served_model_name'] != null) entry.servedModelName = parseString(raw['served_model_name'], `${w}.served_model_name`);
    if (raw['gpus'] != null) entry.gpus = gpuList(raw['gpus'], `${w}.gpus`);
    if (raw['port'] != null) entry.port = parsePort(raw['port'], `${w}.port`);
    if (raw['vllm'] != null) {
      if (!isMap(raw['vllm'])) throw expected(`${w}.vllm`, 'a mapping', raw['vllm']);
      const v = raw['vllm'];
      if (v['command'] != null) {
        throw configError(`${w}.vllm.command: the vLLM command is shared by every model: set vllm.command at the top level of the file`);
      }
      if (v['access_log'] != null) {
        throw configError(`${w}.vllm.access_log: vLLM's access log is on or off for every model: set vllm.access_log at the top level of the file`);
      }
      checkKeys(v, ENTRY_VLLM_KEYS, `${w}.vllm`, `models[${i}].vllm.args`);
      if (v['port'] != null) {
        const port = parsePort(v['port'], `${w}.vllm.port`);
        if (entry.port !== undefined && entry.port !== port) {
          throw configError(`${w}: port ${entry.port} and vllm.port ${port} disagree; set the backend port once (port: or vllm.port:)`);
        }
        entry.port = port;
      }
      if (v['tensor_parallel_size'] != null) entry.tensorParallelSize = parseTensorParallel(v['tensor_parallel_size'], `${w}.vllm.tensor_parallel_size`);
      if (v['args'] != null) entry.args = strings(v['args'], `${w}.vllm.args`, 'a list of strings (vLLM flags)');
      if (v['env'] != null) entry.env = envMap(v['env'], `${w}.vllm.env`);
    }
    return entry;
  });
}

/** `probes.require`: `all` (ready when every model is) or `any`. */
export function parseRequire(value: unknown, where: string): 'all' | 'any' {
  if (value === 'all' || value === 'any') return value;
  throw expected(where, '"all" or "any"', value);
}
