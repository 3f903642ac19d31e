// The `ray start` command lines of --role head and --role worker, in one place: `probe` shows what `start` runs.
import { DEFAULTS } from '../config/defaults.js';
import type { Config } from '../config/types.js';

/** `ray start` for this node's role (head: `--head --port=6379`, worker: `--address=HEAD`), or null without a role. */
export function rayStartArgv(config: Pick<Config, 'cluster' | 'ray'>): string[] | null {
  const ray = config.ray.command;
  if (config.cluster.role === 'head') return [...ray, 'start', '--head', `--port=${DEFAULTS.rayPort}`, '--block'];
  if (config.cluster.role === 'worker') return [...ray, 'start', `--address=${config.cluster.head}`, '--block'];
  return null;
}
