// Reading a metered request's JSON body once: the model, the alias rewrite, and `stream_options.include_usage`.
import { parseJsonObject, withMember } from '../util/json-edit.js';

/** What the proxy learns from, and does to, a metered request body. */
export interface BodyPlan {
  /** The public model name asked for, or null when the body has none (or is not JSON). */
  model: string | null;
  /**
   * A body that is not empty and not a JSON object the proxy can read (not UTF-8, NaN or Infinity, an array): vLLM's
   * reader (Python's json) takes some of these, so its model would go unchecked and its usage uncounted (answer 400).
   */
  unreadable: boolean;
  /** True when aliases exist and the model is neither the served name nor an alias (answer 404). */
  unknown: boolean;
  /** The body to forward when it changed (alias rewritten, include_usage added), else null. */
  body: Buffer | null;
  /** True when `stream_options.include_usage` was added: the usage event must be removed before the client. */
  injected: boolean;
  stream: boolean;
}

/** Paths whose streams take `stream_options.include_usage` (OpenAI's and vLLM's chat and text completions). */
const USAGE_STREAM_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions']);

/** The strings pydantic reads as true for a bool in lax mode (any case). */
const TRUE_WORDS: ReadonlySet<string> = new Set(['1', 'on', 't', 'true', 'y', 'yes']);

/**
 * A JSON value that vLLM's request models read as true. Why not `=== true`: they are pydantic models in lax mode,
 * which take 1 and "true", "yes", "on", "1", "t", "y" for a bool, so `"stream": "true"` streams; read as false here, its
 * usage was not asked for, and a metered key's tokens were only estimated.
 */
export function readsTrue(value: unknown): boolean {
  return value === true || value === 1 || (typeof value === 'string' && TRUE_WORDS.has(value.toLowerCase()));
}

/** Plans a body: alias rewrite (as the proxy does without limits), plus include_usage on streams that lack it. */
export function planBody(raw: Buffer, path: string, served: string, aliases: Readonly<Record<string, string>>): BodyPlan {
  const parsed = parseJsonObject(raw);
  // An empty body is no body (a Responses cancel is a POST without one).
  if (parsed === null) return { model: null, unreadable: raw.toString('latin1').trim() !== '', unknown: false, body: null, injected: false, stream: false };
  const { obj } = parsed;
  let { text } = parsed;
  const model = typeof obj.model === 'string' ? obj.model : null;
  const stream = readsTrue(obj.stream);
  let changed = false;
  if (model !== null && model !== served && Object.keys(aliases).length > 0) {
    if (!Object.hasOwn(aliases, model)) return { model, unreadable: false, unknown: true, body: null, injected: false, stream };
    // With several models the map also holds each served name as itself: nothing to rewrite then.
    if (aliases[model] !== model) {
      text = withMember(text, 'model', JSON.stringify(aliases[model]));
      changed = true;
    }
  }
  let injected = false;
  if (stream && USAGE_STREAM_PATHS.has(path)) {
    const so = obj.stream_options;
    const given = so !== null && typeof so === 'object' && !Array.isArray(so) ? (so as Record<string, unknown>) : null;
    // Why a missing include_usage asks for usage: vLLM's StreamOptions defaults it to true, so `stream_options: {}`
    // (or continuous_usage_stats alone) streams usage from vLLM; taken for "not asked", the usage the client gets
    // from vLLM was stripped (vllm/entrypoints/serve/utils/api_utils.py, should_include_usage). Null is not asked.
    const asked = given !== null && (given.include_usage === undefined || readsTrue(given.include_usage));
    // Options that are neither an object nor null (a list, a string) are vLLM's 400 to give: left as they are.
    if (!asked && (given !== null || so === undefined || so === null)) {
      // continuous_usage_stats off: the client who had it with include_usage off got no usage in its chunks before.
      const options = { ...(given ?? {}), include_usage: true, continuous_usage_stats: false };
      text = withMember(text, 'stream_options', JSON.stringify(options));
      injected = true;
      changed = true;
    }
  }
  // Edited in place: every other byte as the client sent it (a seed past 2^53 would not survive JSON.stringify).
  return { model, unreadable: false, unknown: false, body: changed ? Buffer.from(text, 'utf8') : null, injected, stream };
}
