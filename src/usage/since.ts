// `--since`: a span back from now (`90m`, `24h`, `7d`, `2w`), a date (`2026-05-01`), a date-time
// (`2026-05-01T09:30`, UTC unless it names a zone: `Z`, `+02:00`), or `all`.
import { usageError } from '../errors.js';
import { parseIsoInstant } from '../util/iso-time.js';

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
  // Only the strict forms, each field checked: a day or hour that does not exist is refused, never rolled over.
  const ms = parseIsoInstant(value.trim());
  if (ms !== null) return ms;
  const hint = /^\d{4}-\d{2}-\d{2}/.test(v) ? ' (the form is YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM], with a day and time that exist)' : '';
  throw usageError(
    `--since: expected a span like 24h, 7d or 2w, a date like 2026-05-01, a date-time like 2026-05-01T09:30 (UTC) or 2026-05-01T09:30+02:00, or all; got ${JSON.stringify(value)}${hint}`,
  );
}
