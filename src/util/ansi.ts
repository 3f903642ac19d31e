// Terminal colour codes (SGR sequences) taken out of a text bound for a file, a JSON log or a parser.

const SGR = /\x1b\[[0-9;]*m/g;

/** The text without its colour codes (SGR escape sequences); other text unchanged. */
export function withoutColourCodes(text: string): string {
  return text.includes('\x1b') ? text.replace(SGR, '') : text;
}
