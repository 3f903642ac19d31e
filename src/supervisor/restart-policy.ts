// When to restart a failed child and when to give up: exponential backoff and a failure budget over a window.
import type { RestartConfig } from '../config/types.js';

/** Settings of the restart policy (seconds): the config's `restart`, fully resolved. */
export type RestartSettings = RestartConfig;

/** The defaults live with the config; re-exported for the policy's users. */
export { DEFAULT_RESTART } from '../config/reliability.js';

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
