// The reliability settings of llmserve's YAML: `restart`, `drain` and `stall_timeout`, validated with key paths.
import { configError } from '../errors.js';
import type { DrainConfig, RestartConfig } from './types.js';
import { asMap, at, expected, joinPath, parseNonNegativeSeconds, parsePositiveInt, parseSeconds } from './values.js';

/** Defaults of the restart policy (seconds): 1 s doubling to 60 s; the 5th failure within 10 minutes gives up. */
export const DEFAULT_RESTART: Readonly<RestartConfig> = Object.freeze({
  policy: 'on-failure',
  maxFailures: 5,
  windowS: 600,
  backoffInitialS: 1,
  backoffMaxS: 60,
  resetAfterS: 300,
});

/** Defaults of the graceful drain on SIGTERM/SIGINT (seconds). */
export const DEFAULT_DRAIN: Readonly<DrainConfig> = Object.freeze({ delay: 0, timeout: 30 });

/** Default stall timeout while vLLM starts: 10 minutes without a single output line. */
export const DEFAULT_STALL_TIMEOUT = 600;

/** Known keys of the `restart` mapping and of `drain` (also used by the unknown-key check). */
export const RESTART_KEYS: readonly string[] = ['policy', 'max_failures', 'window', 'backoff_initial', 'backoff_max', 'reset_after'];
/** Known keys of the `drain` mapping. */
export const DRAIN_KEYS: readonly string[] = ['delay', 'timeout'];

const POLICY = '"on-failure" or "never" (or a mapping with policy, max_failures, window, backoff_initial, backoff_max, reset_after)';

function parsePolicy(value: unknown, where: string): RestartConfig['policy'] {
  if (value === 'on-failure' || value === 'never') return value;
  throw expected(where, POLICY, value);
}

/** `--restart` / `LLMSERVE_RESTART`: the policy alone (the budget and backoff stay the file's or the defaults). */
export function parseRestartPolicy(value: unknown, where: string): RestartConfig['policy'] {
  if (value === 'on-failure' || value === 'never') return value;
  throw expected(where, '"on-failure" or "never"', value);
}

/** `restart: on-failure | never`, or the mapping form with the budget and backoff spelled out. */
export function parseRestart(value: unknown, file: string): RestartConfig {
  const where = (key: string): string => at(file, joinPath('restart', key));
  if (typeof value === 'string') return { ...DEFAULT_RESTART, policy: parsePolicy(value, at(file, 'restart')) };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw expected(at(file, 'restart'), POLICY, value);
  const map = asMap(value, at(file, 'restart'));
  const has = (k: string) => map[k] !== undefined && map[k] !== null;
  const out: RestartConfig = { ...DEFAULT_RESTART };
  if (has('policy')) out.policy = parsePolicy(map['policy'], where('policy'));
  if (has('max_failures')) out.maxFailures = parsePositiveInt(map['max_failures'], where('max_failures'));
  if (has('window')) out.windowS = parseSeconds(map['window'], where('window'));
  if (has('backoff_initial')) out.backoffInitialS = parseSeconds(map['backoff_initial'], where('backoff_initial'));
  if (has('backoff_max')) out.backoffMaxS = parseSeconds(map['backoff_max'], where('backoff_max'));
  if (has('reset_after')) out.resetAfterS = parseSeconds(map['reset_after'], where('reset_after'));
  if (out.backoffMaxS < out.backoffInitialS) {
    throw configError(`${where('backoff_max')}: expected at least backoff_initial (${out.backoffInitialS}), got ${out.backoffMaxS}`);
  }
  return out;
}

/** `drain: {delay, timeout}`: seconds to keep serving after SIGTERM, then at most how long to wait for in-flight requests. */
export function parseDrain(value: unknown, file: string): DrainConfig {
  const map = asMap(value, at(file, 'drain'));
  const out: DrainConfig = { ...DEFAULT_DRAIN };
  if (map['delay'] !== undefined && map['delay'] !== null) out.delay = parseNonNegativeSeconds(map['delay'], at(file, 'drain.delay'));
  if (map['timeout'] !== undefined && map['timeout'] !== null) out.timeout = parseNonNegativeSeconds(map['timeout'], at(file, 'drain.timeout'));
  return out;
}
