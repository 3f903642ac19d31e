// Per-key enforcement: key state (401), model allowlist (404), budget (429 insufficient_quota), rpm / tpm and
// max_parallel (429 with OpenAI's rate-limit headers). Counters live in this one process (see docs/cost-control.md).
import type { KeyPolicy } from '../config/key-policy.js';
import { BudgetLedger } from './budget.js';
import { rateHeaders, retryAfter } from './headers.js';
import { compilePolicy, type CompiledPolicy } from './policy.js';
import * as reject from './rejections.js';
import type { LimitError, RejectReason } from './rejections.js';
import { SlidingWindow } from './window.js';

/** The outcome of admitting a request: go (with headers for the response) or a refusal. */
export type Admission =
  | { ok: true; headers: Record<string, string> | null }
  | { ok: false; reason: RejectReason; error: LimitError };

/** Counters of one key name; they survive a keys reload as long as the name stays. */
interface KeyState {
  policy: CompiledPolicy;
  requests: SlidingWindow | null;
  tokens: SlidingWindow | null;
  inflight: number;
  budget: BudgetLedger | null;
}

/** Hour rows to seed budgets from the usage store. */
export interface BudgetSeed {
  key: string;
  hour: number;
  tokens: number;
}

/** Enforces the policies of every key that has one; a name without a policy is never looked at further. */
export class Limiter {
  private readonly states = new Map<string, KeyState>();
  /** Tokens per key and hour (last 30 days) and per key in total, read from the store at start. */
  private seeds: BudgetSeed[] = [];
  private totals: ReadonlyMap<string, number> = new Map();

  /** `now` is wall-clock ms (budgets are per hour of the calendar). */
  constructor(
    policies: ReadonlyMap<string, KeyPolicy> = new Map(),
    private readonly now: () => number = Date.now,
  ) {
    this.setPolicies(policies);
  }

  /** Replaces the policies (keys reload); counters of names that keep a policy carry over. */
  setPolicies(policies: ReadonlyMap<string, KeyPolicy>): void {
    const old = new Map(this.states);
    this.states.clear();
    for (const [name, p] of policies) {
      const policy = compilePolicy(p);
      const prev = old.get(name);
      const budgetChanged = prev?.policy.budget?.hours !== policy.budget?.hours;
      this.states.set(name, {
        policy,
        requests: policy.rpm === null ? null : (prev?.requests ?? new SlidingWindow()),
        tokens: policy.tpm === null ? null : (prev?.tokens ?? new SlidingWindow()),
        inflight: prev?.inflight ?? 0,
        budget: policy.budget === null ? null : !budgetChanged && prev?.budget ? prev.budget : this.ledger(name, policy.budget.hours),
      });
    }
  }

  /** Seeds budgets with tokens already used (from the usage store); call before traffic. */
  seedBudgets(hourly: readonly BudgetSeed[], totals: ReadonlyMap<string, number>): void {
    this.seeds = [...hourly].sort((a, b) => a.hour - b.hour);
    this.totals = totals;
    for (const [name, state] of this.states) if (state.budget !== null && state.policy.budget !== null) state.budget = this.ledger(name, state.policy.budget.hours);
  }

  private ledger(name: string, hours: number | null): BudgetLedger {
    const ledger = new BudgetLedger(hours);
    if (hours === null) ledger.addHour(0, this.totals.get(name) ?? 0);
    else for (const s of this.seeds) if (s.key === name) ledger.addHour(s.hour, s.tokens);
    return ledger;
  }

  /** The compiled policy of a key name, or undefined (the fast path). */
  policy(name: string): CompiledPolicy | undefined {
    return this.states.get(name)?.policy;
  }

  /** True when at least one key has a policy. */
  active(): boolean {
    return this.states.size > 0;
  }

  /** Checks that need no body: disabled (401) and expired (401). */
  checkKey(name: string): { reason: RejectReason; error: LimitError } | null {
    const p = this.states.get(name)?.policy;
    if (p === undefined) return null;
    if (p.disabled) return { reason: 'disabled', error: reject.disabledKey() };
    if (p.expiresAt !== null && this.now() >= p.expiresAt) return { reason: 'expired', error: reject.expiredKey(p.expiresAt) };
    return null;
  }

  /** True when the key may use this public model name (always true without an allowlist). */
  allows(name: string, model: string): boolean {
    const models = this.states.get(name)?.policy.models;
    return models === undefined || models === null || models.has(model);
  }

  /**
   * Admits one request of `name` (model already checked): budget, rpm, tpm, then max_parallel. On success the
   * request is counted and holds a parallel slot until `release(name)`.
   */
  admit(name: string): Admission {
    const s = this.states.get(name);
    if (s === undefined) return { ok: true, headers: null };
    const now = this.now();
    const p = s.policy;
    const headers: Record<string, string> = {};
    const reqUsed = s.requests?.used(now) ?? 0;
    const tokUsed = s.tokens?.used(now) ?? 0;
    if (p.rpm !== null && s.requests !== null) rateHeaders(headers, 'requests', p.rpm, reqUsed, s.requests.msUntil(now, Math.max(0, p.rpm - 1)));
    if (p.tpm !== null && s.tokens !== null) rateHeaders(headers, 'tokens', p.tpm, tokUsed, s.tokens.msUntil(now, p.tpm - 1));

    if (p.budget !== null && s.budget !== null && s.budget.used(now) >= p.budget.tokens) {
      const wait = s.budget.msUntilBelow(now, p.budget.tokens);
      return { ok: false, reason: 'budget', error: reject.budgetSpent(p.budget.tokens, p.budget.period, wait === null ? headers : { ...headers, 'retry-after': retryAfter(wait) }) };
    }
    if (p.rpm !== null && s.requests !== null && reqUsed >= p.rpm) {
      const wait = s.requests.msUntil(now, p.rpm - 1);
      const after = retryAfter(wait);
      return { ok: false, reason: 'rpm', error: reject.rateLimited('requests', p.rpm, reqUsed, after, { ...headers, 'retry-after': after }) };
    }
    if (p.tpm !== null && s.tokens !== null && tokUsed >= p.tpm) {
      const wait = s.tokens.msUntil(now, p.tpm - 1);
      const after = retryAfter(wait);
      return { ok: false, reason: 'tpm', error: reject.rateLimited('tokens', p.tpm, tokUsed, after, { ...headers, 'retry-after': after }) };
    }
    if (p.maxParallel !== null && s.inflight >= p.maxParallel) return { ok: false, reason: 'parallel', error: reject.tooManyParallel(p.maxParallel) };

    s.inflight++;
    if (s.requests !== null && p.rpm !== null) {
      s.requests.add(now, 1);
      headers['x-ratelimit-remaining-requests'] = String(Math.max(0, p.rpm - reqUsed - 1));
    }
    return { ok: true, headers: Object.keys(headers).length > 0 ? headers : null };
  }

  /** Ends an admitted request: frees its parallel slot and counts its tokens (tpm and budget). */
  release(name: string, tokens: number): void {
    const s = this.states.get(name);
    if (s === undefined) return;
    if (s.inflight > 0) s.inflight--;
    if (tokens > 0) {
      const now = this.now();
      s.tokens?.add(now, tokens);
      s.budget?.add(now, tokens);
    }
  }

  /** Requests of a key in flight (tests, metrics). */
  inflight(name: string): number {
    return this.states.get(name)?.inflight ?? 0;
  }
}
