// Per-key policy fields of a `proxy.keys` / keys-file entry: models, rpm, tpm, max_parallel, budget, expires, disabled.
import { configError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';
import { at, expected, isMap, joinPath, parseBool, parsePositiveInt } from './values.js';

/** Budget periods: rolling windows of 1, 7 or 30 days, or everything ever recorded. */
export type BudgetPeriod = '1d' | '7d' | '30d' | 'total';

/** What one key may do. JSON-safe: it travels to the proxy over IPC as it is. Absent field = no limit. */
export interface KeyPolicy {
  /** Allowlist of public model names (served name or aliases). */
  models?: string[];
  /** Requests per minute (sliding window). */
  rpm?: number;
  /** Prompt + completion tokens per minute (sliding window, counted when responses finish). */
  tpm?: number;
  /** Requests in flight at once. */
  maxParallel?: number;
  /** Tokens (prompt + completion) per period; counted in the usage store, so it survives restarts. */
  budget?: { tokens: number; period: BudgetPeriod };
  /** ISO 8601 instant after which the key is refused (401); normalised to a full ISO string. */
  expires?: string;
  /** True: the key is refused (401) but kept in the file. */
  disabled?: boolean;
}

/** The policy fields a key entry may carry, besides name and key / key_sha256. */
export const POLICY_FIELDS: readonly string[] = ['models', 'rpm', 'tpm', 'max_parallel', 'budget', 'expires', 'disabled'];

const PERIODS: readonly BudgetPeriod[] = ['1d', '7d', '30d', 'total'];

/** True when the policy sets anything at all (such keys leave the proxy's fast path). */
export function hasPolicy(policy: KeyPolicy | undefined): policy is KeyPolicy {
  return policy !== undefined && Object.keys(policy).length > 0;
}

/**
 * True when the policy has a limit counted across requests (rpm, tpm, max_parallel, budget): each proxy process would
 * count it on its own. `models`, `expires` and `disabled` are judged per request, alike in every process.
 */
export function hasCountedLimits(policy: KeyPolicy | undefined): boolean {
  return policy !== undefined && (policy.rpm !== undefined || policy.tpm !== undefined || policy.maxParallel !== undefined || policy.budget !== undefined);
}

/** The policy without its counted limits: what every proxy process judges alike (`models`, `expires`, `disabled`). */
export function withoutCountedLimits(policy: KeyPolicy): KeyPolicy {
  const rest = { ...policy };
  delete rest.rpm;
  delete rest.tpm;
  delete rest.maxParallel;
  delete rest.budget;
  return rest;
}

/** Parses an ISO date or date-time; a date alone means 00:00 UTC of that day (the key works until that day begins), a date-time without a zone is UTC. */
export function parseExpires(value: unknown, where: string): string {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const text = value.trim();
    const day = text.slice(0, 10);
    // A date-time without a zone is UTC, as a date alone is: never the host's time zone, which differs by machine.
    const dateTime = text.replace(' ', 'T');
    const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : /(Z|[+-]\d{2}:?\d{2})$/.test(dateTime) ? dateTime : `${dateTime}Z`);
    // Date.parse rolls 2026-02-30 over to March 2nd: a day that does not exist is refused (as `usage --since` does).
    // A day past any month's end (2026-12-32) or a month 13 does not parse at all: NaN, which has no ISO string.
    const dayMs = Date.parse(`${day}T00:00:00Z`);
    const real = Number.isFinite(dayMs) && new Date(dayMs).toISOString().slice(0, 10) === day;
    if (Number.isFinite(ms) && real) return new Date(ms).toISOString();
  }
  throw expected(where, 'an ISO date like 2026-12-31 or 2026-12-31T18:00:00Z', value);
}

/** Reads the policy fields of one key entry (`entry` already checked to be a mapping); undefined when none is set. */
export function parseKeyPolicy(entry: Record<string, unknown>, file: string, path: string): KeyPolicy | undefined {
  const w = (field: string) => at(file, joinPath(path, field));
  const set = (field: string) => entry[field] !== undefined && entry[field] !== null;
  const out: KeyPolicy = {};
  if (set('models')) {
    const list = entry['models'];
    if (!Array.isArray(list) || list.length === 0) throw expected(w('models'), 'a non-empty list of public model names', list);
    out.models = list.map((m, i) => {
      if (typeof m === 'string' && m.trim() !== '') return m;
      throw expected(`${w('models')}[${i}]`, 'a model name', m);
    });
  }
  if (set('rpm')) out.rpm = parsePositiveInt(entry['rpm'], w('rpm'));
  if (set('tpm')) out.tpm = parsePositiveInt(entry['tpm'], w('tpm'));
  if (set('max_parallel')) out.maxParallel = parsePositiveInt(entry['max_parallel'], w('max_parallel'));
  if (set('budget')) {
    const b = entry['budget'];
    if (!isMap(b)) throw expected(w('budget'), 'a mapping {tokens: N, period: 1d|7d|30d|total}', b);
    for (const k of Object.keys(b)) {
      if (k !== 'tokens' && k !== 'period') throw configError(`${at(file, joinPath(joinPath(path, 'budget'), k))}: unknown key; a budget has tokens and period`);
    }
    const tokens = parsePositiveInt(b['tokens'], at(file, joinPath(joinPath(path, 'budget'), 'tokens')));
    const period = b['period'] ?? 'total';
    if (typeof period !== 'string' || !PERIODS.includes(period as BudgetPeriod)) {
      throw expected(at(file, joinPath(joinPath(path, 'budget'), 'period')), '1d, 7d, 30d or total', period);
    }
    out.budget = { tokens, period: period as BudgetPeriod };
  }
  if (set('expires')) out.expires = parseExpires(entry['expires'], w('expires'));
  // `disabled: false` is the default, not a limit: kept, it would take the key off the fast path and refuse
  // proxy.workers > 1 as "per-key limits".
  if (set('disabled') && parseBool(entry['disabled'], w('disabled'))) out.disabled = true;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** LiteLLM's names of the policy fields (a virtual key's), for a did-you-mean. */
export const LITELLM_POLICY_NAMES: Readonly<Record<string, string>> = { rpm_limit: 'rpm', tpm_limit: 'tpm', max_parallel_requests: 'max_parallel', max_budget: 'budget' };

/** The `proxy.master_limits` mapping: the master key's policy (the master key is unlimited without it). */
export function parseMasterLimits(value: unknown, file: string): KeyPolicy | undefined {
  const where = at(file, 'proxy.master_limits');
  if (!isMap(value)) throw expected(where, `a mapping of ${POLICY_FIELDS.join(', ')}`, value);
  for (const k of Object.keys(value)) {
    if (POLICY_FIELDS.includes(k)) continue;
    const guess = LITELLM_POLICY_NAMES[k] ?? didYouMean(k, POLICY_FIELDS);
    throw configError(`${at(file, joinPath('proxy.master_limits', k))}: unknown key${guess ? `; did you mean "${guess}"?` : ''} (known keys here: ${POLICY_FIELDS.join(', ')})`);
  }
  return parseKeyPolicy(value, file, 'proxy.master_limits');
}
