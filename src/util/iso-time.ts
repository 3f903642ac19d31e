// Strict ISO 8601 dates and date-times: only the forms written below, every field checked against the calendar.

/**
 * `YYYY-MM-DD`, optionally `T` (or a space) and `HH:MM`, `:SS`, `.fraction`, then optionally `Z` or an offset
 * `+HH:MM` / `+HHMM`. Why not Date.parse: it reads anything that starts like a date (`2026-11-28junk` as June,
 * `2026-05-011` as May 11th), rolls impossible fields over (February 30th to March 2nd) and reads a date-time
 * without a zone in the host's time zone.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** Whether `day` of `month` (1-12) is in the calendar of `year`. */
function realDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

/** Offset east of UTC in minutes of `Z`, `+HH:MM` or `+HHMM`, or null when its hours or minutes are out of range. */
function offsetMinutes(zone: string | undefined): number | null {
  if (zone === undefined || zone.toUpperCase() === 'Z') return 0;
  const digits = zone.slice(1).replace(':', '');
  const h = Number(digits.slice(0, 2));
  const m = Number(digits.slice(2));
  if (h > 23 || m > 59) return null;
  return (zone[0] === '-' ? -1 : 1) * (h * 60 + m);
}

/**
 * The instant (epoch ms) of a strict ISO date or date-time, or null when `text` is not one or names a day or time
 * that does not exist. A date is its midnight UTC; a date-time without a zone is UTC as well (never the host's zone).
 */
export function parseIsoInstant(text: string): number | null {
  const m = ISO.exec(text);
  if (m === null) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const offset = offsetMinutes(m[8]);
  if (!realDay(year, month, day) || hour > 23 || minute > 59 || second > 59 || offset === null) return null;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const midnight = new Date(0).setUTCFullYear(year, month - 1, day);
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(m[7]) * 1000);
  return midnight + ((hour * 60 + minute - offset) * 60 + second) * 1000 + fraction;
}
