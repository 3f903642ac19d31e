// Types for report.mjs (plain JavaScript, run by `npm run bench` without the TypeScript loader), for its tests.

/** One target's verdict: pass is null for a figure said beside the targets, not judged. */
export interface BenchTarget {
  name: string;
  value: number | null;
  limit: string;
  pass: boolean | null;
  holds?: boolean;
}

/** Adds `ratios`, `added` and `targets` to a bench results object. */
export function evaluate(results: Record<string, any>): void;
