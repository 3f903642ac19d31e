// Token budgets per key: tokens by hour, summed over a rolling period (1d/7d/30d) or over everything (total).

const HOUR_MS = 3_600_000;

/** The hour number (epoch hours) of an epoch-ms time. */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS);
}

/** Tokens one key used, by hour; the oldest hours drop out of a rolling period. */
export class BudgetLedger {
  /** Hour -> tokens, in increasing hour order (insertion order of a Map). */
  private readonly hours = new Map<number, number>();
  private sum = 0;
  /** The latest hour added. */
  private newest = -Infinity;

  /** `periodHours` null = total (nothing ever drops out). */
  constructor(private readonly periodHours: number | null) {}

  /** Adds tokens in the hour of `nowMs`. */
  add(nowMs: number, tokens: number): void {
    if (tokens <= 0) return;
    this.addHour(hourOf(nowMs), tokens);
  }

  /** Adds tokens to an hour (seeding from the store, oldest first). */
  addHour(hour: number, tokens: number): void {
    const had = this.hours.get(hour);
    this.hours.set(hour, (had ?? 0) + tokens);
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
    if (this.periodHours === null) return this.sum;
    const first = hourOf(nowMs) - this.periodHours + 1;
    for (const [hour, tokens] of this.hours) {
      if (hour >= first) break;
      this.hours.delete(hour);
      this.sum -= tokens;
    }
    return this.sum;
  }

  /** Ms from `nowMs` until the used tokens drop below `limit` (null when they never will: `total`). */
  msUntilBelow(nowMs: number, limit: number): number | null {
    if (this.periodHours === null) return null;
    let left = this.used(nowMs);
    for (const [hour, tokens] of this.hours) {
      left -= tokens;
      if (left < limit) return Math.max(1000, (hour + this.periodHours) * HOUR_MS - nowMs);
    }
    return null;
  }
}
