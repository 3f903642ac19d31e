// The lean command line of `check`: parsed without commander so that a probe script pays no start-up cost for it.
import type { CliOptions } from '../config/types.js';

/** Options of `check`: the shared configuration flags plus --json and --timeout. */
export interface CheckOptions extends CliOptions {
  json?: boolean;
  /** Seconds per check, as given (validated by runCheck). */
  timeout?: string;
}

const VALUE_FLAGS: Record<string, keyof CliOptions | 'timeout'> = {
  '--config': 'config',
  '--model': 'model',
  '--served-model-name': 'servedModelName',
  '--port': 'port',
  '--host': 'host',
  '--backend-port': 'backendPort',
  '--tensor-parallel-size': 'tensorParallelSize',
  '--probe-dir': 'probeDir',
  '--health-interval': 'healthInterval',
  '--startup-timeout': 'startupTimeout',
  '--stop-timeout': 'stopTimeout',
  '--stall-timeout': 'stallTimeout',
  '--engine-stall-timeout': 'engineStallTimeout',
  '--drain-delay': 'drainDelay',
  '--drain-timeout': 'drainTimeout',
  '--restart': 'restart',
  '--log-format': 'logFormat',
  '--timeout': 'timeout',
};

/**
 * Parses the arguments after `check`. Returns null for anything unusual (help, an unknown flag, a missing
 * value, a positional): the full commander CLI then handles it, with its usage messages and exit code 2.
 */
export function parseCheckArgs(args: readonly string[]): CheckOptions | null {
  const out: CheckOptions = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--json') {
      out.json = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const field = Object.hasOwn(VALUE_FLAGS, flag) ? VALUE_FLAGS[flag] : undefined;
    if (field === undefined || field === 'extraArgs') return null;
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = args[++i];
      if (value === undefined || value.startsWith('-')) return null;
    }
    if (field === 'logFormat' && value !== 'text' && value !== 'json') return null;
    out[field] = value;
  }
  return out;
}
