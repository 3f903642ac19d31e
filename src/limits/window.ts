// A sliding one-minute window in fixed slots: requests or tokens counted over the last `spanMs`, O(slots) memory.

/** Counts over a sliding window made of `slots` equal slots (default: 60 one-second slots = one minute). */
export class SlidingWindow {
  private readonly slotMs: number;
  private readonly counts: Float64Array;
  /** The absolute slot number each cell holds (cells are reused round-robin). */
  private readonly stamps: Float64Array;
  private total = 0;

  constructor(
    readonly spanMs = 60_000,
    private readonly slots = 60,
  ) {
    this.slotMs = spanMs / slots;
    this.counts = new Float64Array(slots);
    this.stamps = new Float64Array(slots).fill(-Infinity);
  }

  /** Drops the slots that left the window. */
  private expire(now: number): void {
    const oldest = Math.floor(now / this.slotMs) - this.slots + 1;
    for (let i = 0; i < this.slots; i++) {
      if (this.stamps[i]! < oldest && this.counts[i]! !== 0) {
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
    const i = ((slot % this.slots) + this.slots) % this.slots;
    if (this.stamps[i] !== slot) {
      this.total -= this.counts[i]!;
      this.counts[i] = 0;
      this.stamps[i] = slot;
    }
    this.counts[i]! += n;
    this.total += n;
  }

  /** Ms from `now` until the window's sum drops to `target` or below (0 when it already is). */
  msUntil(now: number, target: number): number {
    this.expire(now);
    if (this.total <= target) return 0;
    if (target <= 0) {
      // Empty again once the newest counted slot leaves: no list to build and sort (every admitted request's reset).
      let newest = -Infinity;
      for (let i = 0; i < this.slots; i++) if (this.counts[i]! !== 0 && this.stamps[i]! > newest) newest = this.stamps[i]!;
      return Math.max(1, (newest + this.slots) * this.slotMs - now);
    }
    const cells: Array<[number, number]> = [];
    for (let i = 0; i < this.slots; i++) if (this.counts[i]! !== 0) cells.push([this.stamps[i]!, this.counts[i]!]);
    cells.sort((a, b) => a[0] - b[0]);
    let left = this.total;
    for (const [slot, count] of cells) {
      left -= count;
      if (left <= target) return Math.max(1, (slot + this.slots) * this.slotMs - now);
    }
    return this.spanMs;
  }
}
