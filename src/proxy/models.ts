// Public model names: alias rewriting of a JSON body or an upload, and the /v1/models list when aliases exist.
import { parseJsonObject, withMember } from '../util/json-edit.js';
import { multipartModel } from './multipart.js';

/** What to do with a parsed body. */
export type ModelDecision =
  /** Forward this body (rewritten, or the original when `body` is null); `model` is for the access log. */
  | { kind: 'forward'; body: Buffer | null; model: string }
  /** The requested model is unknown: answer 404 without asking the backend. */
  | { kind: 'unknown'; model: string }
  /** The body says which model in a way vLLM could read otherwise (an upload with two `model` fields): answer 400. */
  | { kind: 'invalid'; model: string; why: string };

/** Looks at a JSON body's `model` and rewrites an alias to the served name. Non-JSON bodies pass unchanged. */
export function decideModel(raw: Buffer, served: string, aliases: Readonly<Record<string, string>>): ModelDecision {
  const parsed = parseJsonObject(raw);
  if (parsed === null) return { kind: 'forward', body: null, model: '-' };
  const { text, obj } = parsed;
  const model = obj.model;
  if (typeof model !== 'string') return { kind: 'forward', body: null, model: '-' };
  // A name that maps to itself (a LoRA adapter vLLM serves) goes as it is.
  if (model === served || aliases[model] === model) return { kind: 'forward', body: null, model };
  if (Object.hasOwn(aliases, model)) return { kind: 'forward', body: Buffer.from(withMember(text, 'model', JSON.stringify(aliases[model])), 'utf8'), model };
  return { kind: 'unknown', model };
}

/** Looks at a multipart upload's `model` form field and rewrites an alias to the served name, as for JSON. */
export function decideUploadModel(raw: Buffer, contentType: string, served: string, aliases: Readonly<Record<string, string>>): ModelDecision {
  const field = multipartModel(raw, contentType);
  if (field === null) return { kind: 'forward', body: null, model: '-' };
  if ('refused' in field) return { kind: 'invalid', model: '-', why: field.refused };
  const model = field.value;
  if (model === served || aliases[model] === model) return { kind: 'forward', body: null, model };
  if (!Object.hasOwn(aliases, model)) return { kind: 'unknown', model };
  return { kind: 'forward', body: Buffer.concat([raw.subarray(0, field.start), Buffer.from(aliases[model]!, 'utf8'), raw.subarray(field.end)]), model };
}

/** The model an upload names, only read (for a key's allowlist without aliases or several models): vLLM gets it as sent. */
export function readUploadModel(raw: Buffer, contentType: string): ModelDecision {
  const field = multipartModel(raw, contentType);
  if (field !== null && 'refused' in field) return { kind: 'invalid', model: '-', why: field.refused };
  return { kind: 'forward', body: null, model: field?.value ?? '-' };
}

/**
 * The model id of a retrieve request, `GET /v1/models/{id}` (or `/models/{id}`, as LiteLLM also serves it), or null.
 * The id is decoded whole: a hub-style name comes with its slash encoded (`Qwen%2FQwen2.5-7B`, as the SDKs send it).
 */
export function retrievedModelId(url: string | undefined): string | null {
  if (url === undefined) return null;
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const prefix = path.startsWith('/v1/models/') ? '/v1/models/' : path.startsWith('/models/') ? '/models/' : null;
  if (prefix === null || path.length === prefix.length) return null;
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    return null;
  }
}

/** The OpenAI list shape with the served name(s) and each alias. */
export function modelList(served: string | readonly string[], aliases: Readonly<Record<string, string>>, created: number): unknown {
  const servedNames: readonly string[] = typeof served === 'string' ? [served] : served;
  const names = [...servedNames, ...Object.keys(aliases).filter((a) => !servedNames.includes(a))];
  return {
    object: 'list',
    data: names.map((id) => ({ id, object: 'model', created, owned_by: 'llmserve', root: servedNames.includes(id) ? id : (aliases[id] ?? servedNames[0]), parent: null })),
  };
}
