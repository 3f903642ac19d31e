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

  /** `periodHours` null = total (nothing ever drops out). */
  constructor(private readonly periodHours: number | null) {}

  /** Adds tokens in the hour of `nowMs`. */
  add(nowMs: number, tokens: number): void {
    if (tokens <= 0) return;
    this.addHour(hourOf(nowMs), tokens);
  }

  /** Adds tokens to an hour (seeding from the store, oldest first). */
  addHour(hour: number, tokens: number): void {
    this.hours.set(hour, (this.hours.get(hour) ?? 0) + tokens);
    this.sum += tokens;
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
