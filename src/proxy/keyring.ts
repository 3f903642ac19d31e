// The accepted keys: the configured ones plus the keys file's, swapped atomically on reload.
import { readKeysFile, type KeyPolicy } from '../config/index.js';
import type { Logger } from '../log.js';
import { toStoredKeys, type StoredKey } from './auth.js';

/** The current key list and how to refresh it. */
export interface KeyRing {
  /** The keys to check a request against (a new array after each reload; never mutated). */
  current(): readonly StoredKey[];
  /** Re-reads the keys file; on failure keeps the old keys, logs and rethrows. Resolves with the key count. */
  reload(): Promise<number>;
  /** Every key entry in use with its policy (configured ones, then the keys file's), for the limiter. */
  entries(): readonly Entry[];
}

type Entry = { name: string; sha256Hex: string; policy?: KeyPolicy };

/** A keys file as read: `{name, sha256Hex}` entries, and warnings about weak keys in it (never the keys). */
export interface LoadedKeysFile {
  entries: Entry[];
  notes: readonly string[];
}

/** Reads a keys file (the loader is injectable for tests). */
export type KeysFileLoader = (path: string) => Promise<LoadedKeysFile>;

/** How the ring reads the keys file and what it does around that. */
export interface KeyRingOptions {
  /** Reads the file (default: the config module's loader). */
  load?: KeysFileLoader;
  /**
   * What of a loaded file this proxy cannot serve as it runs (counted limits, with several workers): the entries
   * without it and why, or null when there is none. The rest of the file is put in force, so that a revocation in the
   * same edit applies.
   */
  unservable?: (fromFile: readonly Entry[]) => { entries: Entry[]; why: string } | null;
  /** The file's keys as last loaded (by the supervisor's config load or an earlier proxy): served if the file fails now. */
  lastFromFile?: readonly Entry[];
  /** Told the file's keys after each load that is put in force (at start and on reload). */
  onLoaded?: (fromFile: readonly Entry[]) => void;
  /**
   * Where what every proxy process would say alike goes ("keys loaded", weak keys): with several workers only one
   * says it (default: `logger`). Errors go to `reportError`.
   */
  announce?: Logger;
  /** Where the keys file's errors go (default: `logger.error`); a cluster worker hands them to its primary. */
  reportError?: (message: string) => void;
}

const defaultLoader: KeysFileLoader = async (path) => {
  const { entries, notes } = await readKeysFile(path);
  return { entries: entries.map((k) => ({ name: k.name, sha256Hex: k.sha256.toString('hex'), ...(k.policy === undefined ? {} : { policy: k.policy }) })), notes };
};

/**
 * A keys-file entry whose name a configured key (the master key, `proxy.keys`) already has, for another key, or that
 * is a configured key under another name: start refuses that file, and a reload (or a restarted proxy) must too, or
 * the two would share one name's policy, counters and usage rows (a `disabled: true` entry named `master` would lock
 * the master key out; the master key listed as `ops`, disabled, would be `ops` and refused).
 */
function nameTaken(configured: readonly Entry[], fromFile: readonly Entry[]): string | null {
  const byName = new Map(configured.map((e) => [e.name, e.sha256Hex.toLowerCase()]));
  const clash = fromFile.find((e) => byName.has(e.name) && byName.get(e.name) !== e.sha256Hex.toLowerCase());
  if (clash !== undefined) return `key name "${clash.name}" is already used by a key of the configuration (names must be unique)`;
  const byDigest = new Map(configured.map((e) => [e.sha256Hex.toLowerCase(), e.name]));
  const same = fromFile.find((e) => byDigest.has(e.sha256Hex.toLowerCase()) && byDigest.get(e.sha256Hex.toLowerCase()) !== e.name);
  return same === undefined ? null : `"${same.name}" is the same key as "${byDigest.get(same.sha256Hex.toLowerCase())}" of the configuration (each key must be listed once)`;
}

/**
 * Builds the key ring and reads the keys file once. The configured keys (master key, inline keys) always stay; the
 * file's are the file's as read now (a configured key that the file lists too counts as the file's), so that a key
 * removed from the file stops working on reload.
 */
export async function createKeyRing(configured: readonly Entry[], keysFile: string | null, logger: Logger, options: KeyRingOptions = {}): Promise<KeyRing> {
  const { load = defaultLoader, unservable = () => null, onLoaded = () => {}, announce = logger, reportError = (m: string) => logger.error(m) } = options;
  let base: readonly Entry[] = configured;
  let keys: readonly StoredKey[] = toStoredKeys(configured);
  let all: readonly Entry[] = configured;
  /** The file's warnings as last said (or, at start, as the supervisor said them). */
  let said = new Set<string>();
  /** The file's entries this proxy can serve; what it cannot is said as an error (the rest still applies). */
  const servable = (fromFile: Entry[]): Entry[] => {
    const left = unservable(fromFile);
    if (left === null) return fromFile;
    reportError(`${keysFile}: ${left.why}`);
    return left.entries;
  };

  const reload = async (): Promise<number> => {
    if (keysFile === null) return keys.length;
    let fromFile: Entry[];
    let notes: readonly string[];
    try {
      ({ entries: fromFile, notes } = await load(keysFile));
    } catch (err) {
      reportError(`${(err as Error).message}; keeping the ${keys.length} keys in use`);
      throw err;
    }
    const why = nameTaken(base, fromFile);
    if (why !== null) {
      reportError(`${keysFile}: ${why}; keeping the ${keys.length} keys in use`);
      throw new Error(why);
    }
    fromFile = servable(fromFile);
    const before = all.length - base.length;
    all = [...base, ...fromFile];
    keys = toStoredKeys(all);
    announce.info(`keys loaded: ${keys.length} (${fromFile.length} from ${keysFile})`);
    // An empty file is valid (start notes it), but emptied on reload it is more often a file caught mid-write.
    if (fromFile.length === 0 && before > 0) {
      announce.warn(`${keysFile} lists no keys now: the ${before} key${before === 1 ? '' : 's'} it listed before ${before === 1 ? 'is' : 'are'} refused from now on (if the file was being written, send SIGHUP again once it is whole)`);
    }
    // Why here too: at start the supervisor warns about weak keys when it reads the config; a key added later by a
    // reload (short, or a placeholder from an example) would otherwise be served without a word. Once each: a key
    // that stays in the file is not warned about again at every SIGHUP.
    for (const note of notes) if (!said.has(note)) announce.warn(note);
    said = new Set(notes);
    onLoaded(fromFile);
    return keys.length;
  };

  if (keysFile !== null) {
    try {
      // The supervisor has warned about this file's weak keys when it read the config: not again here.
      const { entries: read, notes } = await load(keysFile);
      said = new Set(notes);
      // A file that reuses a configured key or its name is refused as a reload refuses it: the keys as last loaded stay.
      const taken = nameTaken(configured, read);
      if (taken !== null) throw new Error(`${keysFile}: ${taken}`);
      // A restarted proxy reads the file as it is now: what a reload leaves out, it leaves out too.
      const fromFile = servable(read);
      const initial = new Set(fromFile.map((e) => e.sha256Hex.toLowerCase()));
      base = configured.filter((e) => !initial.has(e.sha256Hex.toLowerCase()));
      // The file's keys as they are now, with their policies (the supervisor may send only the configured ones).
      all = [...base, ...fromFile];
      keys = toStoredKeys(all);
      onLoaded(fromFile);
    } catch (err) {
      // Why not the configured keys alone: a proxy restarted (after a crash) while someone's edit left the file
      // broken would lock out every key of the file. The file's keys as last loaded (at config load, or by the last
      // reload, so that keys it removed stay out) stay in force, as they do when a SIGHUP finds the file broken.
      const last = options.lastFromFile ?? [];
      const known = new Set(configured.map((e) => e.sha256Hex.toLowerCase()));
      all = [...configured, ...last.filter((e) => !known.has(e.sha256Hex.toLowerCase()))];
      keys = toStoredKeys(all);
      reportError(`${(err as Error).message}; keeping the ${keys.length} keys in use before (${all.length - configured.length} as last loaded from ${keysFile})`);
    }
  }
  return { current: () => keys, reload, entries: () => all };
}
