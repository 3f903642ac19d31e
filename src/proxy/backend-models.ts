// vLLM's own model entries (max_model_len, root, parent), for the model lists the proxy answers itself.
import { performance } from 'node:perf_hooks';
import { httpGet } from '../probes/http-check.js';

/** One entry of an OpenAI model list. */
export type ModelEntry = { id: string } & Record<string, unknown>;

/** How long a model list waits for vLLM's; past it the proxy's own entries are answered. */
const BACKEND_LIST_TIMEOUT_MS = 1000;

/**
 * vLLM's entries by id, from `GET /v1/models` on each backend (loopback; a self-signed HTTPS vLLM is accepted). A
 * backend that does not answer in time, or not with a list, gives none: the proxy's own entries stand in for them.
 */
export async function backendModelEntries(urls: readonly string[], timeoutMs = BACKEND_LIST_TIMEOUT_MS): Promise<Map<string, ModelEntry>> {
  const byId = new Map<string, ModelEntry>();
  const answers = await Promise.all(urls.map((url) => httpGet(new URL('/v1/models', url).href, { timeoutMs, insecure: true, maxBodyBytes: 4 * 1024 * 1024 })));
  for (const answer of answers) {
    if (!answer.ok) continue;
    try {
      const data = (JSON.parse(answer.body) as { data?: unknown }).data;
      if (!Array.isArray(data)) continue;
      for (const m of data) if (m !== null && typeof m === 'object' && typeof (m as ModelEntry).id === 'string') byId.set((m as ModelEntry).id, m as ModelEntry);
    } catch {
      // Not JSON (cut short): the proxy's own entries then.
    }
  }
  return byId;
}

/**
 * backendModelEntries shared for `ttlMs` by every caller of the returned function (per set of backends): a storm of
 * model lists and retrieves, each of which would open a connection to vLLM, costs vLLM one list a second.
 */
export function sharedBackendModelEntries(ttlMs = 1000, fetch = backendModelEntries, now = () => performance.now()): (urls: readonly string[]) => Promise<Map<string, ModelEntry>> {
  const recent = new Map<string, { at: number; entries: Promise<Map<string, ModelEntry>> }>();
  return (urls) => {
    const key = urls.join(' ');
    const hit = recent.get(key);
    if (hit !== undefined && now() - hit.at < ttlMs) return hit.entries;
    const entries = fetch(urls);
    recent.set(key, { at: now(), entries });
    return entries;
  };
}

/**
 * The proxy's list entries with vLLM's fields where vLLM has the model: a served name or LoRA adapter gets vLLM's
 * entry, an alias its target's entry under its own id. Why: clients read `max_model_len` from the list (to size a
 * prompt), which the proxy's own entries lack; vLLM's list without aliases has it.
 */
export function withBackendFields(entries: readonly ModelEntry[], byId: ReadonlyMap<string, ModelEntry>, aliases: Readonly<Record<string, string>>): ModelEntry[] {
  return entries.map((entry) => {
    const own = byId.get(entry.id);
    if (own !== undefined) return own;
    const target = Object.hasOwn(aliases, entry.id) ? byId.get(aliases[entry.id]!) : undefined;
    return target === undefined ? entry : { ...target, id: entry.id };
  });
}
