// Which config file to read: --config, else LLMSERVE_CONFIG, else ./llmserve.yaml when present, else none.
import { resolve as resolvePath } from 'node:path';
import type { CliOptions } from './types.js';
import { DEFAULTS } from './defaults.js';

/** The config file chosen, and which option chose it (for error messages); null = no file. */
export interface LocatedConfig {
  path: string;
  /** `--config`, `LLMSERVE_CONFIG`, or null when found in the working directory. */
  via: '--config' | 'LLMSERVE_CONFIG' | null;
}

/** Finds the config file to read, by precedence; an explicit one need not exist yet (reading it reports that). */
export async function locateConfig(cli: CliOptions, env: NodeJS.ProcessEnv, cwd: string, exists: (p: string) => Promise<boolean>): Promise<LocatedConfig | null> {
  if (cli.config !== undefined && cli.config !== '') return { path: resolvePath(cwd, cli.config), via: '--config' };
  const fromEnv = env['LLMSERVE_CONFIG'];
  if (fromEnv !== undefined && fromEnv !== '') return { path: resolvePath(cwd, fromEnv), via: 'LLMSERVE_CONFIG' };
  const local = resolvePath(cwd, DEFAULTS.configFileName);
  return (await exists(local)) ? { path: local, via: null } : null;
}
