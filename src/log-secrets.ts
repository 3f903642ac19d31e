// The secrets kept out of log lines: added once each, replaced in one pass over a line however many there are.

/** The shortest value worth redacting: shorter ones would redact ordinary words (such keys are refused elsewhere). */
const MIN_SECRET = 4;
/** Up to this many secrets a line is searched for each in turn; above it, through an index (10,000 keys in a keys file). */
const SCAN_LIMIT = 16;

/** A set of secrets and the replacement of each occurrence in a text, longest secret first where two start alike. */
export class SecretScrubber {
  private readonly known = new Set<string>();
  private sorted: string[] | null = [];
  /** Secrets by their first MIN_SECRET characters, longest first; built on first use after a change. */
  private index: Map<string, string[]> | null = null;

  constructor(private readonly replacement: string) {}

  /** Registers a secret (values shorter than 4 characters are ignored), and its JSON-escaped forms. */
  add(secret: string): void {
    if (secret.length < MIN_SECRET || this.known.has(secret)) return;
    // Why the escaped forms: a line is scrubbed once formatted, and formatting JSON-escapes a value (a JSON log line, a
    // text line's quoted value; once more when a JSON line wraps one): a key with a backslash or a quote (any printable
    // ASCII is allowed) stood there escaped, which the raw key does not match.
    const once = JSON.stringify(secret).slice(1, -1);
    for (const form of once === secret ? [secret] : [secret, once, JSON.stringify(once).slice(1, -1)]) this.known.add(form);
    // Why lazily: registering 10,000 keys one by one re-sorted the whole list each time (3 s at start and on SIGHUP).
    this.sorted = null;
    this.index = null;
  }

  /** The text with every registered secret replaced. */
  scrub(text: string): string {
    if (this.known.size === 0) return text;
    const sorted = (this.sorted ??= [...this.known].sort((a, b) => b.length - a.length));
    if (sorted.length <= SCAN_LIMIT) {
      let out = text;
      for (const secret of sorted) if (out.includes(secret)) out = out.split(secret).join(this.replacement);
      return out;
    }
    // Why an index: with thousands of keys, searching each line for each key cost 0.4 ms a line on the supervisor's
    // one thread (vLLM's lines and the proxy's access log pass through it); one lookup per position costs microseconds.
    const index = (this.index ??= buildIndex(sorted));
    let out = '';
    let copied = 0;
    for (let i = 0; i + MIN_SECRET <= text.length; ) {
      const candidates = index.get(text.slice(i, i + MIN_SECRET));
      const found = candidates?.find((secret) => text.startsWith(secret, i));
      if (found === undefined) {
        i += 1;
        continue;
      }
      out += text.slice(copied, i) + this.replacement;
      i += found.length;
      copied = i;
    }
    return copied === 0 ? text : out + text.slice(copied);
  }
}

function buildIndex(sortedLongestFirst: readonly string[]): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const secret of sortedLongestFirst) {
    const head = secret.slice(0, MIN_SECRET);
    const list = index.get(head);
    if (list === undefined) index.set(head, [secret]);
    else list.push(secret);
  }
  return index;
}
