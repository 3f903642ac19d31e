// Which config file to read: --config, else LLMSERVE_CONFIG, else ./llmserve.yaml when present, else none.
import { access } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { CliOptions } from './types.js';
import { DEFAULTS } from './defaults.js';
import { configError } from '../errors.js';

/** The config file chosen, and which option chose it (for error messages); null = no file. */
export interface LocatedConfig {
  path: string;
  /** `--config`, `LLMSERVE_CONFIG`, or null when found in the working directory. */
  via: '--config' | 'LLMSERVE_CONFIG' | null;
}

/**
 * Whether a file is there (`./llmserve.yaml`), readable or not: one this user cannot read must be an error naming it
 * (readConfigText), never taken for no config file (a billing script's `usage` would read another store). node:fs,
 * not node:fs/promises: it is loaded at Node's start anyway (`check` counts its module loads).
 */
export const configFileExists = (p: string): Promise<boolean> => new Promise((resolve) => access(p, (err) => resolve(err === null)));

/** Finds the config file to read, by precedence; an explicit one need not exist yet (reading it reports that). */
export async function locateConfig(cli: CliOptions, env: NodeJS.ProcessEnv, cwd: string, exists: (p: string) => Promise<boolean>): Promise<LocatedConfig | null> {
  if (cli.config !== undefined && cli.config !== '') return { path: resolvePath(cwd, cli.config), via: '--config' };
  const fromEnv = env['LLMSERVE_CONFIG'];
  if (fromEnv !== undefined && fromEnv !== '') return { path: resolvePath(cwd, fromEnv), via: 'LLMSERVE_CONFIG' };
  const local = resolvePath(cwd, DEFAULTS.configFileName);
  return (await exists(local)) ? { path: local, via: null } : null;
}

/** Reads the located config file's text; a file that cannot be read is a config error naming it and how it was chosen. */
export async function readConfigText(located: LocatedConfig, readFile: (p: string) => Promise<string>): Promise<string> {
  try {
    return await readFile(located.path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw configError(`${located.via ? `${located.via}: ` : ''}cannot read config file ${located.path}: ${reason}`);
  }
}
