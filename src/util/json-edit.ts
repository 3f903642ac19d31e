// Edits of a JSON object's text that leave every other byte as the client sent it. Why not parse and stringify:
// JavaScript numbers round integers past 2^53 (a `seed` of 9007199254740993 would reach vLLM as ...992), and the
// client's spacing, key order and escapes are its own.

/** A JSON text read as a string: a leading UTF-8 byte-order mark dropped (Python's json, vLLM's reader, accepts one). */
export function jsonText(raw: Buffer): string {
  const text = raw.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** A request body that is a JSON object: its text (for in-place edits) and its parsed members; null otherwise. */
export function parseJsonObject(raw: Buffer): { text: string; obj: Record<string, unknown> } | null {
  const text = jsonText(raw);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  return doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? { text, obj: doc as Record<string, unknown> } : null;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past the string that starts at `i` (a `"`). */
function skipString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return i;
}

/** The index just past the value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return skipString(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    while (i < text.length) {
      const d = text.charCodeAt(i);
      if (d === 0x22) {
        i = skipString(text, i);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  // A number, true, false or null: up to the next delimiter.
  while (i < text.length) {
    const d = text.charCodeAt(i);
    if (d === 0x2c || d === 0x7d || d === 0x5d || isSpace(d)) break;
    i++;
  }
  return i;
}

/**
 * Where each top-level member's value lies in the text of a JSON object that JSON.parse has accepted (so it is
 * valid); a name given twice maps to its last value, the one JSON.parse and Python's json keep.
 */
export function memberValues(text: string): Map<string, { start: number; end: number }> {
  const out = new Map<string, { start: number; end: number }>();
  let i = skipSpace(text, 0) + 1;
  for (;;) {
    i = skipSpace(text, i);
    if (i >= text.length || text.charCodeAt(i) !== 0x22) return out;
    const nameEnd = skipString(text, i);
    const name = JSON.parse(text.slice(i, nameEnd)) as string;
    i = skipSpace(text, skipSpace(text, nameEnd) + 1);
    const end = skipValue(text, i);
    out.set(name, { start: i, end });
    i = skipSpace(text, end);
    if (text.charCodeAt(i) !== 0x2c) return out;
    i++;
  }
}

/** `text` (a JSON object) with its top-level member `name` set to `json` (a serialised value): in place, or added last. */
export function withMember(text: string, name: string, json: string): string {
  const at = memberValues(text).get(name);
  if (at !== undefined) return text.slice(0, at.start) + json + text.slice(at.end);
  const close = text.lastIndexOf('}');
  const empty = text.slice(skipSpace(text, 0) + 1, close).trim() === '';
  return `${text.slice(0, close)}${empty ? '' : ','}${JSON.stringify(name)}:${json}${text.slice(close)}`;
}
