// The `usage:` section: where the usage store lives, which keys have their tokens counted, how often it is written.
import { dirname, resolve as resolvePath } from 'node:path';
import { at, asMap, expected, joinPath, parseSeconds, parseString } from './values.js';
import { configError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';

/** Known keys of the `usage` mapping. */
export const USAGE_KEYS: readonly string[] = ['dir', 'track', 'flush_interval'];

/** Usage settings as a file gives them (undefined = not set). */
export interface UsageFileSettings {
  /** Absolute (relative paths are taken from the config file's directory). */
  dir?: string;
  track?: 'limited' | 'all';
  flushInterval?: number;
}

/** The resolved usage settings. */
export interface UsageConfig {
  /** Directory of `llmserve-usage.db`. */
  dir: string;
  /**
   * `limited` (default): tokens and models are counted for keys that have a policy; other keys stay on the
   * fast path (request and error counts only, model `-`). `all`: every key pays for counting.
   */
  track: 'limited' | 'all';
  /** Seconds between batched writes of the store. */
  flushInterval: number;
}

/** Defaults of the usage section. */
export const DEFAULT_USAGE_FLUSH_INTERVAL = 5;

/** Environment variable that overrides `usage.dir` (useful for `llmserve usage` without a config file). */
export const USAGE_DIR_ENV = 'LLMSERVE_USAGE_DIR';

/** Parses `usage:`; relative `dir` is resolved against the config file's directory. */
export function parseUsage(value: unknown, file: string): UsageFileSettings {
  const map = asMap(value, at(file, 'usage'));
  const out: UsageFileSettings = {};
  for (const k of Object.keys(map)) {
    if (USAGE_KEYS.includes(k)) continue;
    const guess = didYouMean(k, USAGE_KEYS);
    throw configError(`${at(file, joinPath('usage', k))}: unknown key; ${guess ? `did you mean "${guess}"?` : `known keys here: ${USAGE_KEYS.join(', ')}`}`);
  }
  if (map['dir'] !== undefined && map['dir'] !== null) out.dir = resolvePath(dirname(file), parseString(map['dir'], at(file, 'usage.dir'), 'a directory path'));
  if (map['track'] !== undefined && map['track'] !== null) {
    const t = map['track'];
    if (t !== 'limited' && t !== 'all') throw expected(at(file, 'usage.track'), '"limited" or "all"', t);
    out.track = t;
  }
  if (map['flush_interval'] !== undefined && map['flush_interval'] !== null) out.flushInterval = parseSeconds(map['flush_interval'], at(file, 'usage.flush_interval'));
  return out;
}

/** The usage directory: LLMSERVE_USAGE_DIR > usage.dir > the config file's directory > the working directory. */
export function usageDir(env: NodeJS.ProcessEnv, fromFile: string | undefined, configFile: string | null, cwd: string): string {
  const e = env[USAGE_DIR_ENV];
  if (e !== undefined && e !== '') return resolvePath(cwd, e);
  if (fromFile !== undefined) return fromFile;
  return configFile !== null ? dirname(configFile) : cwd;
}
