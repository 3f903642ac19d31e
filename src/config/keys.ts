// API keys: `{name, key}` / `{name, key_sha256}` entries -> KeyEntry (digest only), plus weak-key notes.
import { createHash } from 'node:crypto';
import { configError } from '../errors.js';
import type { KeyEntry } from './types.js';
import { MIN_KEY_LENGTH, PLACEHOLDER_KEYS } from './defaults.js';
import { didYouMean } from './did-you-mean.js';
import { LITELLM_POLICY_NAMES, POLICY_FIELDS, parseKeyPolicy } from './key-policy.js';
import { at, expected, isMap, joinPath, kindOf } from './values.js';

/** Keys as loaded: the entries, the raw values known (for redaction), where each entry came from. */
export interface LoadedKeys {
  entries: KeyEntry[];
  values: string[];
  /** Environment variable names that held raw key values. */
  envNames: string[];
  /** One label per entry (`FILE: proxy.keys[0]`), for duplicate errors. */
  origins: string[];
  /** Weak-key warnings (never containing a key). */
  notes: string[];
}

const ENTRY_FIELDS = ['name', 'key', 'key_sha256', ...POLICY_FIELDS];
/** LiteLLM's virtual-key field names, pointed at llmserve's. */
const LITELLM_NAMES: Record<string, string> = { ...LITELLM_POLICY_NAMES, key_alias: 'name' };
const HEX64 = /^[0-9a-fA-F]{64}$/;

/** SHA-256 digest of a raw key (32 bytes): the only form kept in memory. */
export function hashKey(raw: string): Buffer {
  return createHash('sha256').update(raw, 'utf8').digest();
}

/** An empty LoadedKeys. */
export function noKeys(): LoadedKeys {
  return { entries: [], values: [], envNames: [], origins: [], notes: [] };
}

/** Parses a raw key value (never echoed in errors) into a KeyEntry. */
export function rawKeyEntry(name: string, raw: unknown, where: string): { entry: KeyEntry; value: string } {
  if (typeof raw !== 'string' || raw === '') throw configError(`${where}: expected a non-empty string (the key), got ${kindOf(raw)}; quote keys that look like numbers`);
  if (raw !== raw.trim()) throw configError(`${where}: the key starts or ends with whitespace; remove it (clients would never send it)`);
  // An HTTP header carries printable ASCII: a client sends other characters as bytes that the proxy (reading them
  // as Latin-1, as Node does) never matches, or refuses to send them at all; a CR or LF would split the header.
  const bad = /[^\x20-\x7e]/.exec(raw);
  if (bad !== null) throw configError(`${where}: the key holds a character an HTTP header cannot carry (${bad[0].charCodeAt(0) < 0x20 || bad[0] === '\x7f' ? 'a control character' : 'a non-ASCII character'}, at position ${bad.index + 1}), so no client could ever present it; use printable ASCII, e.g. a key from \`llmserve keys generate\``);
  return { entry: { name, sha256: hashKey(raw), digestOnly: false }, value: raw };
}

/**
 * Parses a list of key entries (`proxy.keys` or a keys file). `refs` maps key paths to the os.environ/ names
 * they were read from, so that those names can be kept out of vLLM's environment.
 */
export function parseKeyList(list: unknown, file: string, basePath: string, refs: ReadonlyMap<string, string>): LoadedKeys {
  const out = noKeys();
  if (list === null || list === undefined) return out;
  if (!Array.isArray(list)) {
    // A keys file is the list itself; `keys:` (or `proxy: keys:`) around it, as in the config, is the usual slip.
    if (basePath === '' && isMap(list)) {
      const around = Object.keys(list).find((k) => Array.isArray(list[k]));
      const fix = around === undefined ? 'write the entries at the top level, each starting with `- name:`' : `a keys file is the list itself: move the entries under \`${around}:\` to the top level, each starting with \`- name:\``;
      throw configError(`${file}: expected a list of {name, key} or {name, key_sha256} entries, got a mapping; ${fix}`);
    }
    // The kind only: keys written one per line, as other tools' key files are, read as one string of keys.
    throw configError(`${at(file, basePath)}: expected a list of {name, key} or {name, key_sha256} entries, got ${kindOf(list)}; write each key as \`- name: NAME\` with \`key: KEY\` under it`);
  }
  list.forEach((item, i) => {
    const path = joinPath(basePath, i);
    // The kind only: a key entry written as one string (`- name: a key:sk-...` on one line) holds the key.
    if (!isMap(item)) throw configError(`${at(file, path)}: expected a mapping {name, key} or {name, key_sha256}, got ${kindOf(item)}`);
    for (const field of Object.keys(item)) {
      if (!ENTRY_FIELDS.includes(field)) {
        const guess = LITELLM_NAMES[field] ?? didYouMean(field, ENTRY_FIELDS);
        throw configError(`${at(file, joinPath(path, field))}: unknown key${guess ? `; did you mean "${guess}"?` : ` (a key entry has name, key or key_sha256, and optionally ${POLICY_FIELDS.join(', ')})`}`);
      }
    }
    const name = item['name'];
    if (typeof name !== 'string' || name.trim() === '') throw expected(at(file, joinPath(path, 'name')), 'a non-empty string (the name shown in logs)', name);
    const hasKey = item['key'] !== undefined && item['key'] !== null;
    const hasDigest = item['key_sha256'] !== undefined && item['key_sha256'] !== null;
    if (hasKey === hasDigest) {
      throw configError(`${at(file, path)}: key "${name}" needs exactly one of key or key_sha256, got ${hasKey ? 'both' : 'neither'}`);
    }
    if (hasKey) {
      const keyPath = joinPath(path, 'key');
      const { entry, value } = rawKeyEntry(name, item['key'], at(file, keyPath));
      out.entries.push(entry);
      out.values.push(value);
      const envName = refs.get(keyPath);
      const note = weakKeyNote(name, value, at(file, keyPath), envName);
      if (note) out.notes.push(note);
      if (envName !== undefined) out.envNames.push(envName);
    } else {
      const digest = item['key_sha256'];
      if (typeof digest !== 'string' || !HEX64.test(digest.trim())) {
        const found = typeof digest === 'string' ? `${digest.trim().length} characters${/^[0-9a-fA-F]*$/.test(digest.trim()) ? '' : ' (not all hexadecimal)'}` : kindOf(digest);
        throw configError(`${at(file, joinPath(path, 'key_sha256'))}: expected 64 hexadecimal characters (the SHA-256 digest of the key, e.g. from: printf %s "$KEY" | sha256sum), got ${found}`);
      }
      out.entries.push({ name, sha256: Buffer.from(digest.trim(), 'hex'), digestOnly: true });
      const note = weakDigestNote(name, digest.trim(), at(file, joinPath(path, 'key_sha256')));
      if (note) out.notes.push(note);
    }
    const policy = parseKeyPolicy(item, file, path);
    if (policy !== undefined) out.entries[out.entries.length - 1]!.policy = policy;
    out.origins.push(at(file, path));
  });
  return out;
}

/** Joins key sets in order; names must be unique and no key may appear twice. */
export function mergeKeys(...sets: LoadedKeys[]): LoadedKeys {
  const out = noKeys();
  // Indexed, not scanned: a keys file of 10,000 entries took 17 s to load with a scan per entry (start, every SIGHUP,
  // check and probe).
  const byName = new Map<string, number>();
  const byDigest = new Map<string, number>();
  const values = new Set<string>();
  const envNames = new Set<string>();
  for (const set of sets) {
    set.entries.forEach((entry, i) => {
      const origin = set.origins[i] ?? '';
      const j = byName.get(entry.name);
      if (j !== undefined) throw configError(`${origin}: duplicate key name "${entry.name}" (also used by ${out.origins[j] ?? 'another key'}); key names must be unique`);
      const digest = entry.sha256.toString('hex');
      const k = byDigest.get(digest);
      if (k !== undefined) throw configError(`${origin}: key "${entry.name}" is the same key as "${out.entries[k]?.name ?? ''}" (${out.origins[k] ?? ''}); give each name its own key`);
      byName.set(entry.name, out.entries.length);
      byDigest.set(digest, out.entries.length);
      out.entries.push(entry);
      out.origins.push(origin);
    });
    for (const v of set.values) if (!values.has(v)) (values.add(v), out.values.push(v));
    for (const n of set.envNames) if (!envNames.has(n)) (envNames.add(n), out.envNames.push(n));
    out.notes.push(...set.notes);
  }
  return out;
}

/** Digests of the published placeholders: a `key_sha256` copied from an example is as guessable as the key. */
const PLACEHOLDER_DIGESTS: ReadonlyMap<string, string> = new Map(PLACEHOLDER_KEYS.map((k) => [hashKey(k).toString('hex'), k]));

/** A warning note when a key_sha256 is the digest of a published placeholder; never contains the key. */
export function weakDigestNote(name: string, digestHex: string, where: string): string | undefined {
  if (!PLACEHOLDER_DIGESTS.has(digestHex.toLowerCase())) return undefined;
  return `API key "${name}" (from ${placeText(where)}): its key_sha256 is the digest of a well-known placeholder from examples: anyone could guess the key. Make a new one with: llmserve keys generate --name ${name}, and put its key_sha256 there`;
}

/**
 * A warning note when a named key (proxy.keys, a keys file) is short or a published placeholder; never contains the
 * key. `where` is its `FILE: PATH`, `envName` the variable it was read from (os.environ/NAME), if any.
 */
export function weakKeyNote(name: string, raw: string, where: string, envName?: string): string | undefined {
  const why = weakness(raw);
  if (why === undefined) return undefined;
  const put = envName === undefined ? 'and put its key_sha256 there in place of the key' : `and set ${envName} to the new key`;
  return `API key "${name}" (from ${placeText(where)}) ${why}: anyone could guess it. Make a new one with: llmserve keys generate --name ${name}, ${put}`;
}

/** The weak-key note for the master key; `origin` is its variable or `FILE: PATH`. */
export function weakMasterKeyNote(raw: string, origin: string): string | undefined {
  const why = weakness(raw);
  if (why === undefined) return undefined;
  // LLMSERVE_MASTER_KEY wins over every other source of the master key (resolve.ts, masterKeyGiven).
  const wins = origin === 'LLMSERVE_MASTER_KEY' ? '' : `, which wins over ${placeText(origin)}`;
  return `API key "master" (from ${placeText(origin)}) ${why}: anyone could guess it. Use a long random key: export LLMSERVE_MASTER_KEY=$(openssl rand -hex 32)${wins}`;
}

function weakness(raw: string): string | undefined {
  if (PLACEHOLDER_KEYS.includes(raw.toLowerCase())) return 'is a well-known placeholder from examples';
  if (raw.length < MIN_KEY_LENGTH) return `is shorter than ${MIN_KEY_LENGTH} characters`;
  return undefined;
}

// `FILE: KEY` (values.ts, at) reads better inside a sentence as `KEY in FILE`; a variable name stays as it is.
function placeText(where: string): string {
  const i = where.lastIndexOf(': ');
  return i < 0 ? where : `${where.slice(i + 2)} in ${where.slice(0, i)}`;
}
