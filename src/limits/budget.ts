// Token budgets per key: tokens by hour, summed over a rolling period (1d/7d/30d) or over everything (total).

const HOUR_MS = 3_600_000;

/** The hour number (epoch hours) of an epoch-ms time. */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS);
}

/** One hour's tokens and the time of its latest use. */
interface HourTokens {
  tokens: number;
  latestMs: number;
}

/** Tokens one key used, by hour; the oldest hours drop out of a rolling period. */
export class BudgetLedger {
  /**
   * Hour -> its tokens, in increasing hour order (insertion order of a Map). Why an hour leaves the period a period
   * after its latest use, not when it leaves the last `periodHours` hours: tokens used late in an hour would then leave
   * less than a period after they were used (a day's budget spent twice within 23 hours). So tokens stay at least a
   * period and at most one hour more; hours read from the store, whose rows keep no time within the hour, count as
   * used at the hour's end.
   */
  private readonly hours = new Map<number, HourTokens>();
  private sum = 0;
  /** The latest hour added. */
  private newest = -Infinity;
  private readonly periodMs: number | null;

  /** `periodHours` null = total (nothing ever drops out). */
  constructor(periodHours: number | null) {
    this.periodMs = periodHours === null ? null : periodHours * HOUR_MS;
  }

  /** Adds tokens used at `nowMs`. */
  add(nowMs: number, tokens: number): void {
    if (tokens <= 0) return;
    this.addAt(hourOf(nowMs), tokens, nowMs);
  }

  /** Adds tokens to an hour (seeding from the store, oldest first). */
  addHour(hour: number, tokens: number): void {
    this.addAt(hour, tokens, (hour + 1) * HOUR_MS - 1);
  }

  private addAt(hour: number, tokens: number, atMs: number): void {
    const had = this.hours.get(hour);
    if (had === undefined) this.hours.set(hour, { tokens, latestMs: atMs });
    else {
      had.tokens += tokens;
      had.latestMs = Math.max(had.latestMs, atMs);
    }
    this.sum += tokens;
    // Why re-sort: a new hour older than the newest (the wall clock stepped back) would sit at the end of the Map,
    // and used() and msUntilBelow(), which stop at the first hour still in the period, would keep it past its time.
    if (had === undefined && hour < this.newest) {
      const sorted = [...this.hours].sort((a, b) => a[0] - b[0]);
      this.hours.clear();
      for (const [h, t] of sorted) this.hours.set(h, t);
    }
    if (hour > this.newest) this.newest = hour;
  }

  /** Tokens used in the period that ends at `nowMs`. */
  used(nowMs: number): number {
    if (this.periodMs === null) return this.sum;
    for (const [hour, h] of this.hours) {
      if (h.latestMs + this.periodMs > nowMs) break;
      this.hours.delete(hour);
      this.sum -= h.tokens;
    }
    return this.sum;
  }

  /** Ms from `nowMs` until the used tokens drop below `limit` (null when they never will: `total`). */
  msUntilBelow(nowMs: number, limit: number): number | null {
    if (this.periodMs === null) return null;
    let left = this.used(nowMs);
    for (const h of this.hours.values()) {
      left -= h.tokens;
      if (left < limit) return Math.max(1000, h.latestMs + this.periodMs - nowMs);
    }
    return null;
  }
}
