// Per-key enforcement: key state (401), model allowlist (404), budget (429 insufficient_quota), rpm / tpm and
// max_parallel (429 with OpenAI's rate-limit headers). Counters live in this one process (see docs/cost-control.md).
import type { KeyPolicy } from '../config/key-policy.js';
import { BudgetLedger } from './budget.js';
import { rateHeaders, retryAfter } from './headers.js';
import { compilePolicy, type CompiledPolicy } from './policy.js';
import * as reject from './rejections.js';
import type { LimitError, RejectReason } from './rejections.js';
import { SlidingWindow } from './window.js';
import type { KeyHourTokens } from '../usage/types.js';

/** The outcome of admitting a request: go (with headers for the response) or a refusal. */
export type Admission =
  | { ok: true; headers: Record<string, string> | null }
  | { ok: false; reason: RejectReason; error: LimitError };

/**
 * Counters of one key name; they survive a keys reload as long as the name stays. Both windows are kept for every
 * key with a policy, even without rpm / tpm, so that a reload adding rpm or tpm starts from the last minute's use.
 */
interface KeyState {
  policy: CompiledPolicy;
  requests: SlidingWindow;
  tokens: SlidingWindow;
  inflight: number;
  budget: BudgetLedger | null;
}

/** Hour rows to seed budgets from the usage store: a key's tokens in one hour, as the store sums them. */
export type BudgetSeed = KeyHourTokens;

/** Tokens used so far, as the usage store (and what is not written to it yet) holds them: per key and hour, and per key in total. */
export interface BudgetUsage {
  hourly: readonly BudgetSeed[];
  totals: ReadonlyMap<string, number>;
}

/** Enforces the policies of every key that has one; a name without a policy is never looked at further. */
export class Limiter {
  private readonly states = new Map<string, KeyState>();
  /**
   * Tokens per key and hour (last 30 days), read from the store at start, by key in hour order: a ledger reads its own
   * key's only (a scan of every key's rows per budgeted key took 7 s with 1,000 keys and 240,000 rows, on the proxy's
   * loop at start and on a reload). `totals`: per key in total.
   */
  private seeds = new Map<string, BudgetSeed[]>();
  private totals: ReadonlyMap<string, number> = new Map();

  /**
   * `now` is wall-clock ms (budgets are per hour of the calendar, expiry is a date); `windowNow` is a monotonic ms
   * clock for the rpm / tpm windows. Why two: a wall clock stepped back (NTP, a VM resumed) would leave the window's
   * counts in its future, and the key refused for as long as the step.
   */
  constructor(
    policies: ReadonlyMap<string, KeyPolicy> = new Map(),
    private readonly now: () => number = Date.now,
    private readonly windowNow: () => number = () => performance.now(),
  ) {
    this.setPolicies(policies);
  }

  /**
   * Replaces the policies (keys reload); counters of names that keep a policy carry over. `usage`, when given,
   * returns the usage recorded up to now: a budget added or changed by this reload starts from it, not from the
   * seeds read at start (which miss everything used since). It is called at most once, and only for such a budget.
   */
  setPolicies(policies: ReadonlyMap<string, KeyPolicy>, usage?: () => BudgetUsage | undefined): void {
    let asked = usage === undefined;
    const old = new Map(this.states);
    this.states.clear();
    for (const [name, p] of policies) {
      const policy = compilePolicy(p);
      const prev = old.get(name);
      // An unchanged budget keeps its live ledger; a new or changed one is built from the seeds alone. Never both,
      // so tokens are counted once: fresh seeds already hold what the live ledger counted.
      let budget: BudgetLedger | null = null;
      if (policy.budget !== null && prev?.budget && prev.policy.budget?.hours === policy.budget.hours) budget = prev.budget;
      else if (policy.budget !== null) {
        if (!asked) {
          asked = true;
          const u = usage?.();
          if (u !== undefined) this.useSeeds(u);
        }
        budget = this.ledger(name, policy.budget.hours);
      }
      this.states.set(name, {
        policy,
        requests: prev?.requests ?? new SlidingWindow(),
        tokens: prev?.tokens ?? new SlidingWindow(),
        inflight: prev?.inflight ?? 0,
        budget,
      });
    }
  }

  /** Seeds budgets with tokens already used (from the usage store); call before traffic. */
  seedBudgets(hourly: readonly BudgetSeed[], totals: ReadonlyMap<string, number>): void {
    this.useSeeds({ hourly, totals });
    for (const [name, state] of this.states) if (state.budget !== null && state.policy.budget !== null) state.budget = this.ledger(name, state.policy.budget.hours);
  }

  /** Makes `usage` what budgets built from now on start from. */
  private useSeeds(usage: BudgetUsage): void {
    this.seeds = new Map();
    for (const seed of [...usage.hourly].sort((a, b) => a.hour - b.hour)) {
      const list = this.seeds.get(seed.key);
      if (list === undefined) this.seeds.set(seed.key, [seed]);
      else list.push(seed);
    }
    this.totals = usage.totals;
  }

  private ledger(name: string, hours: number | null): BudgetLedger {
    const ledger = new BudgetLedger(hours);
    if (hours === null) ledger.addHour(0, this.totals.get(name) ?? 0);
    else for (const s of this.seeds.get(name) ?? []) ledger.addHour(s.hour, s.tokens);
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
   * request is counted and holds a parallel slot until `release(name)`; its headers describe the windows with it
   * counted (and the tokens counted so far: a request's own tokens are known only at release).
   */
  admit(name: string): Admission {
    const s = this.states.get(name);
    if (s === undefined) return { ok: true, headers: null };
    const now = this.windowNow();
    const refused = this.refusal(s, now, this.now());
    if (refused !== null) return refused;
    s.inflight++;
    s.requests.add(now, 1);
    return { ok: true, headers: this.headersAt(s, now) };
  }

  /** Why `s` may not send a request at `now` (window clock; `wallNow` for the budget), or null; nothing is counted. */
  private refusal(s: KeyState, now: number, wallNow: number): Admission | null {
    const p = s.policy;
    if (p.budget !== null && s.budget !== null && s.budget.used(wallNow) >= p.budget.tokens) {
      const headers = this.headersAt(s, now) ?? {};
      const wait = s.budget.msUntilBelow(wallNow, p.budget.tokens);
      return { ok: false, reason: 'budget', error: reject.budgetSpent(p.budget.tokens, p.budget.period, wait === null ? headers : { ...headers, 'retry-after': retryAfter(wait) }) };
    }
    // Retry-After is when the window first has room for one more (the oldest units leave it); the reset header is
    // when it is empty again. In a sliding window the first never comes after the second.
    if (p.rpm !== null && s.requests.used(now) >= p.rpm) {
      const after = retryAfter(s.requests.msUntil(now, p.rpm - 1));
      return { ok: false, reason: 'rpm', error: reject.rateLimited('requests', p.rpm, s.requests.used(now), after, { ...this.headersAt(s, now), 'retry-after': after }) };
    }
    if (p.tpm !== null && s.tokens.used(now) >= p.tpm) {
      const after = retryAfter(s.tokens.msUntil(now, p.tpm - 1));
      return { ok: false, reason: 'tpm', error: reject.rateLimited('tokens', p.tpm, s.tokens.used(now), after, { ...this.headersAt(s, now), 'retry-after': after }) };
    }
    // With rpm / tpm, this 429 carries the x-ratelimit-* headers too, as every other answer of the key does.
    if (p.maxParallel !== null && s.inflight >= p.maxParallel) return { ok: false, reason: 'parallel', error: reject.tooManyParallel(p.maxParallel, this.headersAt(s, now)) };
    return null;
  }

  /**
   * OpenAI's x-ratelimit-* headers for the windows as they are at `now` (window clock), or null without rpm / tpm. Reset follows
   * OpenAI's definition, the time until the limit is back to its full value: in a sliding window, until everything
   * counted in it has left (not merely until the next unit frees, which is what Retry-After says on a 429).
   */
  private headersAt(s: KeyState, now: number): Record<string, string> | null {
    const p = s.policy;
    if (p.rpm === null && p.tpm === null) return null;
    const out: Record<string, string> = {};
    if (p.rpm !== null) rateHeaders(out, 'requests', p.rpm, s.requests.used(now), s.requests.msUntil(now, 0));
    if (p.tpm !== null) rateHeaders(out, 'tokens', p.tpm, s.tokens.used(now), s.tokens.msUntil(now, 0));
    return out;
  }

  /** Ends an admitted request: frees its parallel slot and counts its tokens (tpm and budget). */
  release(name: string, tokens: number): void {
    const s = this.states.get(name);
    if (s === undefined) return;
    if (s.inflight > 0) s.inflight--;
    if (tokens > 0) {
      s.tokens.add(this.windowNow(), tokens);
      s.budget?.add(this.now(), tokens);
    }
  }

  /** Requests of a key in flight (tests, metrics). */
  inflight(name: string): number {
    return this.states.get(name)?.inflight ?? 0;
  }
}
