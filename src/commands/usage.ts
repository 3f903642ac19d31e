// `llmserve usage`: what each key used, read from the usage store (the proxy writes it; this only reads).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveEnvRefs } from '../config/env-ref.js';
import { isLiteLLMConfig } from '../config/litellm.js';
import { configFileExists, locateConfig } from '../config/locate.js';
import { parseUsage, usageDir } from '../config/usage-settings.js';
import { isMap } from '../config/values.js';
import { parseYaml } from '../config/yaml.js';
import { configError, ExitCode, LlmserveError } from '../errors.js';
import { hourOf } from '../limits/budget.js';
import { dayChart, summarise, toJson, toTable } from '../usage/report.js';
import { parseSince } from '../usage/since.js';
import { readUsageStore, USAGE_DB_FILE } from '../usage/store.js';
import type { UsageStore } from '../usage/types.js';
import { NO_DRIVER_FIX, NoSqliteDriver } from '../usage/sqlite.js';
import { writeStdout } from '../util/output.js';
import { workingDir } from '../util/cwd.js';

/** Options of `llmserve usage`. */
export interface UsageOptions {
  config?: string;
  key?: string;
  since?: string;
  json?: boolean;
}

/** Side effects, with real defaults. */
export interface UsageDeps {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  now?: () => number;
  write?: (text: string) => void;
  /** Show the bar chart (default: stdout is a terminal). */
  chart?: boolean;
}

/**
 * The usage directory as `start` would use it: only the `usage:` section is read from the config file (so that keys
 * and os.environ/ references elsewhere in it need not be set to read usage), as start reads it.
 */
export async function findUsageDir(config: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const located = await locateConfig(config === undefined ? {} : { config }, env, cwd, configFileExists);
  if (located === null) return usageDir(env, undefined, null, cwd);
  let text: string;
  try {
    text = await readFile(located.path, 'utf8');
  } catch (err) {
    throw configError(`cannot read config file ${located.path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const doc = parseYaml(text, located.path);
  // A LiteLLM config's `usage:` is no LiteLLM section, and start ignores it: its store is next to the file.
  const section = isMap(doc) && !isLiteLLMConfig(doc) ? doc['usage'] : undefined;
  if (section === undefined || section === null) return usageDir(env, undefined, located.path, cwd);
  // The section is checked and read as start reads it (os.environ/ in any of its values, unknown keys, types): a
  // misspelt `dir` would have the report read another store than the one start writes, and a billing script take
  // "no rows" for a period without usage.
  const resolved = resolveEnvRefs(section, 'usage', { env, file: located.path, refs: new Map() });
  return usageDir(env, parseUsage(resolved, located.path).dir, located.path, cwd);
}

/**
 * Runs `llmserve usage`; exit 0 (no store yet prints no rows), or USAGE_STORE (exit 1) when the store is there but
 * cannot be read: a billing script must not take that for a period without usage.
 */
export async function runUsage(options: UsageOptions, deps: UsageDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const cwd = deps.cwd ?? workingDir();
  const now = (deps.now ?? Date.now)();
  const write = deps.write ?? writeStdout;
  const sinceMs = parseSince(options.since ?? '7d', now);
  const dir = await findUsageDir(options.config, env, cwd);

  const file = join(dir, USAGE_DB_FILE);
  const unreadable = (err: unknown) =>
    new LlmserveError('USAGE_STORE', `cannot read the usage store ${file}: ${(err as Error).message}`, {
      details: [err instanceof NoSqliteDriver ? `${NO_DRIVER_FIX}.` : 'Fix: run it as the user llmserve start runs as, or give this one read access to the file and write access to its directory (SQLite opens the store\'s -wal and -shm files beside it, even to read); a damaged store is moved aside (llmserve-usage.db.corrupt-TIME) by the next llmserve start, which begins a new one.'],
      cause: err,
    });
  let store: UsageStore | null;
  try {
    store = await readUsageStore(dir);
  } catch (err) {
    throw unreadable(err);
  }
  const filter = { ...(sinceMs === null ? {} : { sinceHour: hourOf(sinceMs) }), ...(options.key === undefined ? {} : { key: options.key }) };
  const chart = options.json !== true && (deps.chart ?? process.stdout.isTTY === true);
  // Summed by the store (per key and model, and per day for the chart), not read hour by hour.
  let totals: ReturnType<UsageStore['totals']>;
  let byDay: ReturnType<UsageStore['tokensByDay']> = [];
  try {
    totals = store?.totals(filter) ?? [];
    if (chart) byDay = store?.tokensByDay(filter) ?? [];
  } catch (err) {
    throw unreadable(err);
  } finally {
    store?.close();
  }
  const { rows, estimated } = summarise(totals);
  if (options.json === true) {
    write(toJson(rows));
    return ExitCode.ok;
  }
  // The store keeps whole hours, so the rows start at the hour --since falls in: say that hour, not --since itself.
  const period = sinceMs === null ? 'over all recorded time' : `since ${new Date(hourOf(sinceMs) * 3_600_000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  if (rows.length === 0) {
    write(`No usage ${period}${options.key === undefined ? '' : ` for key ${options.key}`} in ${join(dir, USAGE_DB_FILE)}${store === null ? ' (no store yet)' : ''}.\n`);
    return ExitCode.ok;
  }
  write(`Usage ${period} (${join(dir, USAGE_DB_FILE)})\n\n${toTable(rows, estimated)}`);
  if (chart) write(`\n${dayChart(byDay)}`);
  return ExitCode.ok;
}
