// Small validators shared by flags, environment and file: each says where, what was expected, what was found.
import { isIP, isIPv6 } from 'node:net';
import { configError, type LlmserveError } from '../errors.js';

/** A found value as an error message shows it: strings quoted (one holding what looks like a key: not shown), containers by kind. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  // A key pasted one line off (`rpm: sk-...`, `expires:` under a `key:` that lost its value) lands in any field.
  if (typeof value === 'string') return value.split(/[\s,;:=]+/).some(looksSecret) ? 'a string that looks like an API key (not shown)' : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return kindOf(value);
}

/** The kind of a value only (used where the value may be a secret). */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value;
}

/** The one shape of a validation error: `WHERE: expected X, got Y[; hint]`. */
export function expected(where: string, what: string, value: unknown, hint?: string): LlmserveError {
  return configError(`${where}: expected ${what}, got ${describe(value)}${hint ? `; ${hint}` : ''}`);
}

/** Mapping keys that look like an API key or token (a key pasted where a setting's name goes). */
// Case matters: `HF_HUB_ENABLE_HF_TRANSFER` in vllm.env is a setting; `hf_...` and `sk-...` are tokens.
const SECRET_LIKE = /^(sk-|hf_)\S{8,}$|^[0-9a-fA-F]{40,}$/;

/** True for a string that looks like an API key or token (see SECRET_LIKE): never printed. */
export function looksSecret(text: string): boolean {
  return SECRET_LIKE.test(text);
}

/**
 * A path inside a document: `a.b`, `a[0]`. A key that looks like a secret is shown as `[redacted]`. Why: every
 * error names its path, and an API key pasted as a mapping key (`proxy:\n  sk-...: x`) would be printed in full.
 */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  const shown = looksSecret(key) ? '[redacted]' : key;
  return base ? `${base}.${shown}` : shown;
}

/** The label of a place in a file: `FILE: key.path`. */
export function at(file: string, path: string): string {
  return path ? `${file}: ${path}` : file;
}

/** True for a plain mapping (not a list, not null). */
export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A mapping section; null or absent counts as empty. */
export function asMap(value: unknown, where: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  // Only the kind: a section that is a string is most often a missing space (`master_key:sk-...`), secret included.
  if (!isMap(value)) throw configError(`${where}: expected a mapping, got ${kindOf(value)}${typeof value === 'string' && value.includes(':') ? ' (is a space missing after a colon?)' : ''}`);
  return value;
}

const INT = /^\s*\d+\s*$/;
const NUM = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/;

function toInt(value: unknown): number | undefined {
  // Past 2^53 a number is no longer the integer written (99999999999999999999 reads as 1e20): refused, not rounded.
  const n = typeof value === 'number' ? value : typeof value === 'string' && INT.test(value) ? Number(value) : undefined;
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}

/** The most `proxy.workers` accepted. Why a bound: each is a forked Node process, and `1e30` would fork until memory runs out. */
export const MAX_WORKERS = 256;

/** `proxy.workers`: a positive integer up to MAX_WORKERS, or `auto`. */
export function parseWorkers(value: unknown, where: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = toInt(value);
  const hint = 'auto (the default) starts min(2, CPUs) processes, or 1 with key limits';
  // A number too large to read exactly (1e30) is still too many processes: said as such.
  const tooMany = n === undefined ? typeof value !== 'boolean' && Number(value) > MAX_WORKERS : n > MAX_WORKERS;
  if (tooMany) throw expected(where, `at most ${MAX_WORKERS} processes`, value, `${hint}; more processes than CPUs only use memory`);
  if (n === undefined || n < 1) throw expected(where, 'a positive integer or auto', value, hint);
  return n;
}

/** A TCP port, 1-65535. */
export function parsePort(value: unknown, where: string): number {
  const n = toInt(value);
  if (n === undefined || n < 1 || n > 65535) throw expected(where, 'an integer 1-65535', value);
  return n;
}

/** A TCP port or `auto`. */
export function parsePortOrAuto(value: unknown, where: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = toInt(value);
  if (n === undefined || n < 1 || n > 65535) throw expected(where, 'an integer 1-65535 or "auto"', value);
  return n;
}

/** A tensor-parallel size: a positive integer or `auto`. */
export function parseTensorParallel(value: unknown, where: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = toInt(value);
  if (n === undefined || n < 1) throw expected(where, 'a positive integer or "auto"', value);
  return n;
}

/**
 * The longest wait llmserve accepts, in seconds (about 24.8 days). Why: every wait becomes a Node timer, and Node
 * runs a timer longer than 2^31-1 ms after 1 ms instead (a TimeoutOverflowWarning), so a huge timeout would fire at once.
 */
export const MAX_SECONDS = 2_147_483;

const tooLongHint = 'longer waits cannot be timed (Node would fire them at once); use a smaller value';

/** A positive number of seconds (fractions allowed), at most MAX_SECONDS. */
export function parseSeconds(value: unknown, where: string): number {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && NUM.test(value)) n = Number(value);
  if (n === undefined || !Number.isFinite(n) || n <= 0) throw expected(where, 'a positive number of seconds', value);
  if (n > MAX_SECONDS) throw expected(where, `a number of seconds up to ${MAX_SECONDS} (about 24 days)`, value, tooLongHint);
  return n;
}

/** A boolean (`true`/`false`, also as strings from os.environ/). */
export function parseBool(value: unknown, where: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw expected(where, 'true or false', value);
}

/** A non-empty string. */
export function parseString(value: unknown, where: string, what = 'a non-empty string'): string {
  if (typeof value !== 'string' || value.trim() === '') throw expected(where, what, value);
  return value;
}

/** A host name: dot-separated labels of letters, digits, `-` and `_` (as resolvers accept them). */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/**
 * An address to listen on (or to reach the proxy at): an IPv4 or IPv6 address, or a host name. Refused here, not
 * after a model load: an IPv6 address with a zone (`fe80::1%eth0`), which Node binds but no `http://` URL can carry
 * (start's readiness check failed on it once vLLM was ready), brackets (`[::]`, a URL's spelling), and any other
 * text a URL cannot hold.
 */
export function parseBindHost(value: unknown, where: string): string {
  const what = 'a bind address like 0.0.0.0, :: or a host name';
  const host = parseString(value, where, what);
  if (host.includes('%') && isIPv6(host.slice(0, host.indexOf('%')))) {
    throw expected(where, what, value, 'an IPv6 address with a zone (%interface) cannot be used: listen on :: (every interface) or on an address of global scope');
  }
  if (host.startsWith('[') && host.endsWith(']') && isIPv6(host.slice(1, -1))) throw expected(where, what, value, `write the address without brackets: ${host.slice(1, -1)}`);
  if (!isIP(host) && !HOST_NAME.test(host)) throw expected(where, what, value);
  return host;
}

/** `text` or `json`. */
export function parseLogFormat(value: unknown, where: string): 'text' | 'json' {
  if (value === 'text' || value === 'json') return value;
  throw expected(where, '"text" or "json"', value);
}

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** A size in bytes: a positive integer, or a string like `64MiB`, `10MB`, `512KiB`. */
export function parseSize(value: unknown, where: string): number {
  const n = toInt(value);
  if (n !== undefined && n > 0) return n;
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(value);
    const unit = m?.[2] === undefined ? undefined : UNITS[m[2].toLowerCase()];
    if (m?.[1] !== undefined && unit !== undefined) {
      const bytes = Math.floor(Number(m[1]) * unit);
      if (bytes > 0) return bytes;
    }
  }
  throw expected(where, 'a positive number of bytes or a size like "64MiB" or "10MB"', value);
}

/** A number of seconds that may be 0 (fractions allowed), e.g. a delay that is off by default; at most MAX_SECONDS. */
export function parseNonNegativeSeconds(value: unknown, where: string): number {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && NUM.test(value)) n = Number(value);
  if (n === undefined || !Number.isFinite(n) || n < 0) throw expected(where, 'a number of seconds, 0 or more', value);
  if (n > MAX_SECONDS) throw expected(where, `a number of seconds up to ${MAX_SECONDS} (about 24 days)`, value, tooLongHint);
  return n;
}

/** A positive integer (a count). */
export function parsePositiveInt(value: unknown, where: string): number {
  const n = toInt(value);
  if (n === undefined || n < 1) throw expected(where, 'a positive integer', value);
  return n;
}
