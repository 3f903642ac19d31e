// Which raw key `check` sends: the first one the proxy would accept for the authenticated GET /v1/models.
// Types only from the config: this file is part of the lean `check` bundle.
import type { KeyPolicy } from '../config/key-policy.js';
import type { KeyEntry } from '../config/types.js';

/** A raw key known to llmserve, with the name and policy of its entry. */
export interface KeyCandidate {
  name: string;
  value: string;
  policy?: KeyPolicy;
}

/** Why the proxy would refuse this key for a `/v1/models` that must list `model`, at `now` (ms); null when it would not. */
export function keyRefusal(candidate: KeyCandidate, model: string | null, now: number): string | null {
  const p = candidate.policy;
  if (p === undefined) return null;
  // The same rules, in the same order, as the proxy's limiter (disabled, then expired) and its /v1/models filter.
  if (p.disabled === true) return `key "${candidate.name}" is disabled`;
  if (p.expires !== undefined && now >= Date.parse(p.expires)) return `key "${candidate.name}" expired at ${p.expires}`;
  if (model !== null && p.models !== undefined && !p.models.includes(model)) {
    return `key "${candidate.name}" may not use model "${model}" (its models: ${p.models.join(', ')})`;
  }
  return null;
}

/** True when the proxy meters this key (rpm, tpm, max_parallel, budget): each check would use up its quota. */
export function isThrottled(c: KeyCandidate): boolean {
  const p = c.policy;
  return p !== undefined && (p.rpm !== undefined || p.tpm !== undefined || p.maxParallel !== undefined || p.budget !== undefined);
}

/**
 * The key to send (null when none is usable), and why each key was passed over. A usable key without rate limits or
 * budget comes first: a probe every few seconds would spend a limited key's quota and, past its rpm, get a 429
 * that fails the probe. A limited key is used only when no other is usable.
 */
export function firstUsableKey(candidates: readonly KeyCandidate[], model: string | null, now: number): { key: string | null; passed: string[] } {
  const passed: string[] = [];
  let limited: string | null = null;
  for (const c of candidates) {
    const why = keyRefusal(c, model, now);
    if (why !== null) passed.push(why);
    else if (!isThrottled(c)) return { key: c.value, passed };
    else limited ??= c.value;
  }
  return { key: limited, passed };
}

/**
 * Up to `max` more keys to try after `chosen` when the proxy answers 401: the usable ones of `candidates` in the same
 * order (unmetered first). Why: a key just added to the keys file is not the proxy's until its next SIGHUP, and the
 * check must not fail (and a liveness probe restart the pod) while an older key of the file still works.
 */
export function fallbackKeys(candidates: readonly KeyCandidate[], chosen: string, model: string | null, now: number, max = 2): string[] {
  const usable = candidates.filter((c) => c.value !== chosen && keyRefusal(c, model, now) === null);
  return [...usable.filter((c) => !isThrottled(c)), ...usable.filter(isThrottled)].slice(0, max).map((c) => c.value);
}

/** Pairs each raw key value with its entry, matched by SHA-256 digest, for the entry's name and policy. */
export async function rawKeyCandidates(keys: { entries: readonly KeyEntry[]; values: readonly string[] }): Promise<KeyCandidate[]> {
  if (keys.values.length === 0) return [];
  // Loaded only here: a config with raw keys has loaded the YAML parser, and node:crypto with it, already.
  const { createHash } = await import('node:crypto');
  return keys.values.map((value) => {
    const digest = createHash('sha256').update(value, 'utf8').digest();
    const entry = keys.entries.find((e) => !e.digestOnly && e.sha256.equals(digest));
    return { name: entry?.name ?? 'key', value, ...(entry?.policy === undefined ? {} : { policy: entry.policy }) };
  });
}
