// A key's policy compiled for the proxy: numbers ready to compare, an allowlist as a Set.
import type { BudgetPeriod, KeyPolicy } from '../config/key-policy.js';

/** Hours in each budget period (null = everything ever recorded). */
export const PERIOD_HOURS: Readonly<Record<BudgetPeriod, number | null>> = { '1d': 24, '7d': 168, '30d': 720, total: null };

/** What the limiter checks per request. */
export interface CompiledPolicy {
  models: ReadonlySet<string> | null;
  rpm: number | null;
  tpm: number | null;
  maxParallel: number | null;
  budget: { tokens: number; period: BudgetPeriod; hours: number | null } | null;
  /** Epoch ms, or null. */
  expiresAt: number | null;
  disabled: boolean;
}

/** Compiles a config policy; unknown or absent fields mean no limit. */
export function compilePolicy(p: KeyPolicy): CompiledPolicy {
  const expiresAt = p.expires === undefined ? null : Date.parse(p.expires);
  return {
    models: p.models === undefined ? null : new Set(p.models),
    rpm: p.rpm ?? null,
    tpm: p.tpm ?? null,
    maxParallel: p.maxParallel ?? null,
    budget: p.budget === undefined ? null : { tokens: p.budget.tokens, period: p.budget.period, hours: PERIOD_HOURS[p.budget.period] ?? null },
    expiresAt: expiresAt !== null && Number.isFinite(expiresAt) ? expiresAt : null,
    disabled: p.disabled === true,
  };
}
