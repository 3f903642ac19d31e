// A sliding one-minute window in fixed slots: requests or tokens counted over the last `spanMs`, O(slots) memory.

/** Counts over a sliding window of `spanMs` in `slotsPerSpan` equal slots (default: one minute in one-second slots). */
export class SlidingWindow {
  private readonly slotMs: number;
  /** Cells: one more than the span has slots, so that a slot still counted never shares a cell with a new one. */
  private readonly cells: number;
  private readonly counts: Float64Array;
  /**
   * The time of each cell's latest count. Why a cell leaves the window `spanMs` after its latest count, not when its
   * slot leaves the last `slotsPerSpan` slots: counts made late in a slot would then leave less than `spanMs` after
   * they were made (an rpm of 2 admitted 4 within 59.001 s). So every count stays at least `spanMs` and at most one
   * slot more: the limit holds over every span, and a reset is exact for a slot's latest count.
   */
  private readonly latest: Float64Array;
  private total = 0;

  constructor(
    readonly spanMs = 60_000,
    slotsPerSpan = 60,
  ) {
    this.slotMs = spanMs / slotsPerSpan;
    this.cells = slotsPerSpan + 1;
    this.counts = new Float64Array(this.cells);
    this.latest = new Float64Array(this.cells).fill(-Infinity);
  }

  /** Drops the cells that left the window. */
  private expire(now: number): void {
    for (let i = 0; i < this.cells; i++) {
      if (this.counts[i]! !== 0 && this.latest[i]! + this.spanMs <= now) {
        this.total -= this.counts[i]!;
        this.counts[i] = 0;
      }
    }
  }

  /** The sum over the window at `now` (ms). */
  used(now: number): number {
    this.expire(now);
    return this.total;
  }

  /** Adds `n` at `now`. */
  add(now: number, n: number): void {
    if (n === 0) return;
    this.expire(now);
    const slot = Math.floor(now / this.slotMs);
    const i = ((slot % this.cells) + this.cells) % this.cells;
    if (Math.floor(this.latest[i]! / this.slotMs) !== slot) {
      this.total -= this.counts[i]!;
      this.counts[i] = 0;
    }
    this.latest[i] = Math.max(this.latest[i]!, now);
    this.counts[i]! += n;
    this.total += n;
  }

  /** Ms from `now` until the window's sum drops to `target` or below (0 when it already is). */
  msUntil(now: number, target: number): number {
    this.expire(now);
    if (this.total <= target) return 0;
    if (target <= 0) {
      // Empty again once the newest count leaves: no list to build and sort (every admitted request's reset).
      let newest = -Infinity;
      for (let i = 0; i < this.cells; i++) if (this.counts[i]! !== 0 && this.latest[i]! > newest) newest = this.latest[i]!;
      return Math.max(1, newest + this.spanMs - now);
    }
    const cells: Array<[number, number]> = [];
    for (let i = 0; i < this.cells; i++) if (this.counts[i]! !== 0) cells.push([this.latest[i]!, this.counts[i]!]);
    cells.sort((a, b) => a[0] - b[0]);
    let left = this.total;
    for (const [latest, count] of cells) {
      left -= count;
      if (left <= target) return Math.max(1, latest + this.spanMs - now);
    }
    return this.spanMs;
  }
}
