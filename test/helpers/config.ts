// Config test helpers: in-memory files, exit-2 error assertions, key-leak checks.
import assert from 'node:assert/strict';
import { loadConfig, type CliOptions, type Config } from '../../src/config/index.js';
import { LlmserveError } from '../../src/errors.js';

// In-memory files (absolute, or relative to CWD) and assertions shared by the tests below.
export const CWD = '/srv/app';
export const STRONG_KEY = 'sk-live-0123456789abcdef0123456789';

/** Loads a config from in-memory files (absolute paths, or relative to CWD). */
export function load(files: Record<string, string>, cli: CliOptions = {}, env: NodeJS.ProcessEnv = {}, cores = 1): Promise<Config> {
  const abs = (p: string): string => (p.startsWith('/') ? p : `${CWD}/${p}`);
  const fs = new Map(Object.entries(files).map(([p, t]) => [abs(p), t]));
  return loadConfig(cli, {
    env,
    cwd: CWD,
    readFile: async (p) => {
      const t = fs.get(p);
      if (t === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return t;
    },
    exists: async (p) => fs.has(p),
    // A fixed CPU count: `proxy.workers: auto` must not depend on the machine the tests run on.
    cores,
  });
}

/** Asserts that loading rejects with an exit-2 LlmserveError whose message matches, and returns it. */
export async function rejects(p: Promise<unknown>, pattern: RegExp, secrets: string[] = []): Promise<LlmserveError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof LlmserveError, `expected an LlmserveError, got ${String(caught)}`);
  assert.equal(caught.exitCode, 2);
  assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes('\n'), 'one line');
  for (const s of secrets) assert.ok(!caught.message.includes(s), `message leaks a key: ${caught.message}`);
  return caught;
}

/** Asserts that no note of a config contains any of the raw keys. */
export function assertNoLeak(config: Config, secrets: string[]): void {
  for (const note of config.notes) for (const s of secrets) assert.ok(!note.includes(s), `note leaks a key: ${note}`);
}
