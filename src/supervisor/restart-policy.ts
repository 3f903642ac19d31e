// When to restart a failed child and when to give up: exponential backoff and a failure budget over a window.

/** Settings of the restart policy (seconds). */
export interface RestartSettings {
  policy: 'on-failure' | 'never';
  /** The Nth failure within `windowS` gives up. */
  maxFailures: number;
  windowS: number;
  backoffInitialS: number;
  backoffMaxS: number;
  /** Healthy this long after a restart: the backoff starts again from the initial delay. */
  resetAfterS: number;
}

export const DEFAULT_RESTART: RestartSettings = {
  policy: 'on-failure',
  maxFailures: 5,
  windowS: 600,
  backoffInitialS: 1,
  backoffMaxS: 60,
  resetAfterS: 300,
};

/** Pure bookkeeping of failures; the caller supplies the clock. */
export class RestartPolicy {
  private failures: number[] = [];
  private consecutive = 0;
  private healthySince: number | null = null;

  constructor(private readonly settings: RestartSettings) {}

  /** Records one failure at `nowMs`; returns the delay before the next try, or null to give up. */
  recordFailure(nowMs: number): { delayMs: number; failuresInWindow: number } | null {
    this.healthySince = null;
    this.failures = this.failures.filter((t) => nowMs - t < this.settings.windowS * 1000);
    this.failures.push(nowMs);
    if (this.settings.policy === 'never' || this.failures.length >= this.settings.maxFailures) return null;
    const delayS = Math.min(this.settings.backoffMaxS, this.settings.backoffInitialS * 2 ** this.consecutive);
    this.consecutive += 1;
    return { delayMs: delayS * 1000, failuresInWindow: this.failures.length };
  }

  /** Records a passing health check; staying healthy for resetAfterS resets the backoff. */
  recordHealthy(nowMs: number): void {
    this.healthySince ??= nowMs;
    if (nowMs - this.healthySince >= this.settings.resetAfterS * 1000) this.consecutive = 0;
  }

  get failuresRecorded(): number {
    return this.failures.length;
  }
}
