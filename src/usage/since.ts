// `--since`: a span back from now (`90m`, `24h`, `7d`, `2w`), a date (`2026-05-01`), or `all`.
import { usageError } from '../errors.js';

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** The first instant (epoch ms) a `--since` value selects; null for `all`. */
export function parseSince(value: string, nowMs: number): number | null {
  const v = value.trim().toLowerCase();
  if (v === 'all') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([mhdw])$/.exec(v);
  if (m !== null) {
    // A span reaching before 1970 selects everything (and would make an invalid date further on).
    const from = nowMs - Number(m[1]) * UNIT_MS[m[2]!]!;
    return from > 0 ? from : null;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(v);
    const ms = Date.parse(dateOnly ? `${v}T00:00:00Z` : value.trim());
    // Date.parse rolls 2026-02-30 over to March 2nd: a day that does not exist is refused instead.
    if (Number.isFinite(ms) && (!dateOnly || new Date(ms).toISOString().slice(0, 10) === v)) return ms;
  }
  throw usageError(`--since: expected a span like 24h, 7d or 2w, a date like 2026-05-01, or all; got ${JSON.stringify(value)}`);
}
