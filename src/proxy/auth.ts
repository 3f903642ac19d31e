// API key checks: extract the presented key, hash it, compare against every stored digest in constant time.
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

/** Checks the presented key against every stored digest, never stopping at the first match (constant time). */
export function authenticate(headers: IncomingHttpHeaders, keys: readonly StoredKey[]): AuthResult {
  const raw = presentedKey(headers);
  if (raw === null) return { ok: false, reason: 'missing' };
  const digest = sha256(raw);
  let found: StoredKey | null = null;
  for (const key of keys) {
    const same = timingSafeEqual(digest, key.sha256);
    if (same && found === null) found = key;
  }
  return found === null ? { ok: false, reason: 'invalid' } : { ok: true, name: found.name };
}
