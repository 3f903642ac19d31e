// Token counts from what the backend already sends: `usage` in JSON answers, the usage event of streams.

/** Prompt and completion tokens of one request. */
export interface TokenCount {
  prompt: number;
  completion: number;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** The usage of a parsed answer or stream event: chat/completions/embeddings (`usage`) or responses (`response.usage`). */
export function usageOf(obj: unknown): TokenCount | null {
  if (obj === null || typeof obj !== 'object') return null;
  const o = obj as { usage?: unknown; response?: { usage?: unknown } };
  const u = (o.usage ?? (o.response !== null && typeof o.response === 'object' ? o.response.usage : undefined)) as Record<string, unknown> | null | undefined;
  if (u === null || u === undefined || typeof u !== 'object') return null;
  return { prompt: num(u['prompt_tokens'] ?? u['input_tokens']), completion: num(u['completion_tokens'] ?? u['output_tokens']) };
}

/** The balanced `{...}` starting at `from` (strings and escapes respected), or null. */
function objectAt(text: string, from: number): string | null {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123) depth++;
    else if (c === 125 && --depth === 0) return text.slice(from, i + 1);
  }
  return null;
}

/**
 * The usage of a JSON answer from its text, which may be only the tail of a large answer: the last
 * `"usage": {...}` object is read on its own, so an embeddings answer of megabytes is never parsed whole.
 */
export function usageFromJsonText(text: string): TokenCount | null {
  let at = text.lastIndexOf('"usage"');
  while (at >= 0) {
    let i = at + 7;
    while (i < text.length && (text[i] === ' ' || text[i] === ':' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
    if (text[i] === '{') {
      const slice = objectAt(text, i);
      if (slice !== null) {
        try {
          return usageOf({ usage: JSON.parse(slice) as unknown });
        } catch {
          // not JSON after all: try an earlier occurrence
        }
      }
    }
    at = text.lastIndexOf('"usage"', at - 1);
  }
  return null;
}

/** A rough estimate when the backend reported nothing: about 4 bytes of prompt text per token. */
export function estimatePromptTokens(bodyBytes: number): number {
  return Math.ceil(bodyBytes / 4);
}
