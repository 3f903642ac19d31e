// Cost control inside the proxy: per-key limits, usage accounting and metrics, built once per proxy process.
import { hasPolicy, type KeyPolicy } from '../config/key-policy.js';
import { hourOf } from '../limits/budget.js';
import { Limiter, type BudgetSeed, type BudgetUsage } from '../limits/limiter.js';
import type { Logger } from '../log.js';
import { ProxyMetrics } from '../metrics/proxy-metrics.js';
import { UsageRecorder } from '../usage/recorder.js';
import { memoryStore, openUsageStore, reopenUsageStore } from '../usage/store.js';
import type { UsageRow, UsageStore } from '../usage/types.js';
import type { Exchange } from './exchange.js';
import type { BackendState } from './settings.js';

/** Hours of hourly rows read at start for rolling budgets (the longest period, 30 days). */
const BUDGET_HOURS = 720;

/** Usage settings as the proxy receives them. */
export interface UsageSettings {
  /** Directory of the store; null keeps usage in memory (tests). */
  dir: string | null;
  /** `limited`: only keys with a policy have their body read and tokens counted; `all`: every key. */
  track: 'limited' | 'all';
  /** Seconds between batched writes. */
  flushInterval: number;
}

/** The limiter, the usage recorder and the metrics, with what the proxy calls on them. */
export interface CostControl {
  readonly limiter: Limiter;
  readonly metrics: ProxyMetrics;
  readonly recorder: UsageRecorder;
  /** True when every key is metered (usage.track: all). */
  readonly trackAll: boolean;
  /** Replaces the key policies (start, keys reload). */
  setPolicies(entries: readonly { name: string; policy?: KeyPolicy | undefined }[]): void;
  /** Counts one finished exchange: metrics, tokens, usage row, and the limiter's parallel slot. */
  finish(ex: Exchange, status: number, durationMs: number): void;
  /** Follows the backend state (health metric, restarts). */
  setState(state: BackendState): void;
  /** Writes the last usage and closes the store. */
  close(): void;
}

/** The name -> policy map of key entries that have one. */
export function policyMap(entries: readonly { name: string; policy?: KeyPolicy | undefined }[]): Map<string, KeyPolicy> {
  const out = new Map<string, KeyPolicy>();
  for (const e of entries) if (hasPolicy(e.policy)) out.set(e.name, e.policy);
  return out;
}

/** The names whose policy has a budget: the only keys whose past usage budgets read. */
export function budgetKeys(policies: ReadonlyMap<string, KeyPolicy>): string[] {
  return [...policies].filter(([, p]) => p.budget !== undefined).map(([name]) => name);
}

/**
 * Tokens per key and hour (the last 30 days before `nowMs`) and per key in total: the store's rows plus the
 * recorder's rows not written yet. A flush moves rows from one to the other at once, so each is counted once.
 * Only the keys named (null: all), summed by the store, since this runs on the proxy's event loop (at start,
 * and at a reload that adds or changes a budget), where reading every key's rows of a month took 0.8 s and 200 MB
 * with 240,000 rows in the store.
 */
export function budgetUsage(store: UsageStore, unflushed: readonly UsageRow[], nowMs: number, keys: readonly string[] | null = null): BudgetUsage {
  const since = hourOf(nowMs) - BUDGET_HOURS;
  const byHour = new Map<string, BudgetSeed>();
  const totals = store.totalsByKey(keys);
  const wanted = keys === null ? null : new Set(keys);
  const add = (key: string, hour: number, tokens: number): void => {
    if (hour < since || (wanted !== null && !wanted.has(key))) return;
    const id = `${key}\u0000${hour}`;
    const seed = byHour.get(id);
    if (seed === undefined) byHour.set(id, { key, hour, tokens });
    else seed.tokens += tokens;
  };
  for (const r of store.tokensByKeyHour(since, keys)) add(r.key, r.hour, r.tokens);
  for (const r of unflushed) {
    add(r.key, r.hour, r.promptTokens + r.completionTokens);
    if (wanted === null || wanted.has(r.key)) totals.set(r.key, (totals.get(r.key) ?? 0) + r.promptTokens + r.completionTokens);
  }
  return { hourly: [...byHour.values()], totals };
}

/** Opens the usage store (a broken or unusable one only warns), seeds budgets from it, builds the metrics. */
export async function createCostControl(
  usage: UsageSettings,
  entries: readonly { name: string; policy?: KeyPolicy | undefined }[],
  state: BackendState,
  logger: Logger,
  /** The public model names (served name and aliases); any other name is counted as `other`. */
  models: readonly string[] = [],
  /** Where opening the store warns (a cluster worker: to the primary, which says each distinct warning once). */
  opening: Logger = logger,
): Promise<CostControl> {
  const known = new Set(models);
  // Clients choose the model string: a name the proxy does not serve must not create a metric series or a row.
  const label = (model: string): string => (model === '-' || known.has(model) ? model : 'other');
  const store = usage.dir === null ? memoryStore() : await openUsageStore(usage.dir, opening);
  const policies = policyMap(entries);
  const limiter = new Limiter(policies);
  // Budgets start from what the store already holds, so that a restart does not refill them.
  try {
    const usage = budgetUsage(store, [], Date.now(), budgetKeys(policies));
    limiter.seedBudgets(usage.hourly, usage.totals);
  } catch (err) {
    opening.warn(`cannot read the usage store for budgets (${(err as Error).message}); budgets start at 0`);
  }
  if (store.file !== null) logger.info(`usage store: ${store.file} (${store.kind})`);
  const dir = usage.dir;
  const reopen = dir === null ? undefined : () => reopenUsageStore(dir, opening);
  const recorder = new UsageRecorder({ store, logger, flushMs: Math.max(100, Math.round(usage.flushInterval * 1000)), ...(reopen ? { reopen } : {}) });
  const metrics = new ProxyMetrics(state);

  return {
    limiter,
    metrics,
    recorder,
    trackAll: usage.track === 'all',
    setPolicies(next) {
      // A budget added or changed by a reload must see the tokens used since start, not only those read at start;
      // the limiter asks only when it builds such a budget.
      const policies = policyMap(next);
      limiter.setPolicies(policies, (): BudgetUsage | undefined => {
        try {
          return budgetUsage(recorder.store, recorder.unflushed(), Date.now(), budgetKeys(policies));
        } catch (err) {
          opening.warn(`cannot read the usage store for budgets (${(err as Error).message}); new budgets start from the usage read at start`);
          return undefined;
        }
      });
    },
    finish(ex, status, durationMs) {
      const model = label(ex.model);
      metrics.request(ex.keyName, model, status, durationMs, ex.ttfb);
      if (ex.rejected !== null) metrics.rejected.inc(1, ex.rejected);
      if (ex.streaming) metrics.streams.inc(-1);
      if (!ex.counted) return;
      let prompt = 0;
      let completion = 0;
      let estimated = false;
      if (ex.meter !== null) {
        const r = ex.meter.result();
        prompt = r.prompt;
        completion = r.completion;
        estimated = r.estimated;
        metrics.countTokens(ex.keyName, model, prompt, completion, estimated);
      }
      if (ex.admitted) limiter.release(ex.keyName, prompt + completion);
      // Requests without a key name (auth off, or refused before auth) are not a key's usage.
      // A stream that failed after its 200 (vLLM's error event) is an error too.
      if (ex.keyName !== '-') recorder.record(ex.keyName, model, status >= 400 || ex.meter?.failed === true, prompt, completion, estimated);
    },
    setState(next) {
      metrics.setState(next);
    },
    close() {
      recorder.close();
    },
  };
}
