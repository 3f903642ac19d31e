// API key checks: extract the presented key, hash it, find its digest among the stored ones, confirm in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The four headers a key may arrive in (LiteLLM's set); all are stripped before forwarding. */
export const keyHeaders = ['authorization', 'x-api-key', 'api-key', 'x-litellm-api-key'] as const;

/** One accepted key as the proxy holds it: a name for the log, a 32-byte digest. */
export interface StoredKey {
  name: string;
  sha256: Buffer;
}

/** Result of checking a request: the key's name, or why it was refused. */
export type AuthResult = { ok: true; name: string } | { ok: false; reason: 'missing' | 'invalid' };

/** SHA-256 of a raw key. */
export function sha256(raw: string): Buffer {
  return createHash('sha256').update(raw, 'utf8').digest();
}

/** Turns `{name, sha256Hex}` entries into stored keys, dropping malformed digests and duplicates. */
export function toStoredKeys(entries: readonly { name: string; sha256Hex: string }[]): StoredKey[] {
  const seen = new Set<string>();
  const out: StoredKey[] = [];
  for (const e of entries) {
    const hex = e.sha256Hex.toLowerCase();
    if (hex.length !== 64 || seen.has(hex)) continue;
    const digest = Buffer.from(hex, 'hex');
    if (digest.length !== 32) continue;
    seen.add(hex);
    out.push({ name: e.name, sha256: digest });
  }
  return out;
}

/**
 * The key a request presents, or null: Bearer (scheme in any case) first, then the three API-key headers, whose
 * value may carry a `Bearer ` prefix too (LiteLLM's docs write `x-litellm-api-key: Bearer sk-...`, and it strips it).
 */
export function presentedKey(headers: IncomingHttpHeaders): string | null {
  const auth = headers.authorization;
  if (auth !== undefined && hasBearerPrefix(auth)) {
    const key = auth.slice(7).trim();
    if (key.length > 0) return key;
  }
  for (const name of ['x-api-key', 'api-key', 'x-litellm-api-key'] as const) {
    const value = headers[name];
    const raw = Array.isArray(value) ? value[0] : value;
    if (raw === undefined) continue;
    const key = (hasBearerPrefix(raw) ? raw.slice(7) : raw).trim();
    if (key.length > 0) return key;
  }
  return null;
}

/** `Bearer ` in any case, compared in place: no substring per request. */
function hasBearerPrefix(value: string): boolean {
  if (value.length < 7 || value.charCodeAt(6) !== 32) return false;
  for (let i = 0; i < 6; i++) if ((value.charCodeAt(i) | 0x20) !== BEARER.charCodeAt(i)) return false;
  return true;
}

const BEARER = 'bearer';

/** Each key list's index by digest, built on its first use (a list is never mutated: a reload makes a new one). */
const indexes = new WeakMap<readonly StoredKey[], Map<string, StoredKey>>();

function indexOf(keys: readonly StoredKey[]): Map<string, StoredKey> {
  let index = indexes.get(keys);
  if (index === undefined) {
    index = new Map();
    // The first entry wins for a digest listed twice, as the scan this replaced did.
    for (const key of keys) {
      const hex = key.sha256.toString('hex');
      if (!index.has(hex)) index.set(hex, key);
    }
    indexes.set(keys, index);
  }
  return index;
}

/**
 * Checks the presented key: its SHA-256 digest is looked up among the stored digests, then compared with the one
 * found in constant time. Why a lookup and not a scan of every key: a scan cost 60 us per request with 1,000 keys
 * and 579 us with 10,000 (docs/performance.md, item 14); the lookup costs about the same whichever key matched and
 * however many there are. Its time depends only on the digest, which no one can steer toward a stored one without
 * the key itself, so it tells an attacker nothing about the keys, least of all a key's bytes (what a plain string
 * compare of the keys would leak).
 */
export function authenticate(headers: IncomingHttpHeaders, keys: readonly StoredKey[]): AuthResult {
  const raw = presentedKey(headers);
  if (raw === null) return { ok: false, reason: 'missing' };
  const digest = sha256(raw);
  const found = indexOf(keys).get(digest.toString('hex'));
  if (found === undefined || !timingSafeEqual(digest, found.sha256)) return { ok: false, reason: 'invalid' };
  return { ok: true, name: found.name };
}
