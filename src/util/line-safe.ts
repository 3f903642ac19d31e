// Values of others' making (a client's model name, an operator's key name) in one log or table line: never a line
// break, a terminal escape or a bidi override of their making, whatever splits or shows the line.

/**
 * Characters JSON.stringify leaves raw that a reader may take for a line end (U+0085, U+2028/9: Python's
 * splitlines, many editors), that drive a terminal (C1 controls: U+009B is CSI), or that hide or reorder the text
 * around them (invisible spaces and marks, bidi embeddings, overrides and isolates).
 */
const INVISIBLE = '\\x7f-\\x9f\\xa0\\xad\\u061c\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u206f\\u3000\\ufeff';
const HAS_INVISIBLE = new RegExp(`[${INVISIBLE}]`);
const EACH_INVISIBLE = new RegExp(`[${INVISIBLE}]`, 'g');

/** What makes a value quoted: the above, ASCII space and controls, and the quote and backslash themselves. */
const NEEDS_QUOTE = new RegExp(`[\\x00-\\x20"\\\\${INVISIBLE}]`);

const hex4 = (c: string): string => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/** JSON text with the characters above written as `\uXXXX` (still the same JSON value). */
export function escapeInvisible(json: string): string {
  return HAS_INVISIBLE.test(json) ? json.replace(EACH_INVISIBLE, hex4) : json;
}

/**
 * A value as it may stand in a space-separated line: as it is when it holds only visible characters (letters of any
 * script included), else JSON-quoted with every control, line separator and bidi or invisible character escaped.
 */
export function lineValue(value: string): string {
  return NEEDS_QUOTE.test(value) ? escapeInvisible(JSON.stringify(value)) : value;
}
