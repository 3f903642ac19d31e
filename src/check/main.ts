// The lean entry of `llmserve check`: no commander, no chalk, no execa; the YAML parser only when a config file is read.
import { parseCheckArgs } from './args.js';
import { runCheck } from '../commands/check.js';
import type { LlmserveError } from '../errors.js';

/**
 * An expected llmserve error. Checked by name, not instanceof: in the bundled build the config loader is loaded
 * lazily from dist/config/ and brings its own copy of the error class.
 */
function isLlmserveError(err: unknown): err is LlmserveError {
  return err instanceof Error && err.name === 'LlmserveError' && typeof (err as Partial<LlmserveError>).exitCode === 'number';
}

/** Writes an expected error the way the logger does (`llmserve | error: ... code=X`), or as a JSON line with --log-format json. */
function printError(err: LlmserveError, json: boolean): void {
  if (json) {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', source: 'llmserve', msg: err.message, code: err.code }) + '\n');
  } else {
    process.stderr.write(`llmserve | error: ${err.message} code=${err.code}\n`);
  }
  for (const line of err.details ?? []) process.stderr.write(`llmserve | ${line}\n`);
}

/**
 * Runs `check` with the arguments after it; resolves to the exit code, or to null when the arguments need the
 * full CLI (help, an unknown flag): the caller then runs that, so usage errors look the same as everywhere else.
 */
export async function checkMain(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number | null> {
  const options = parseCheckArgs(args);
  if (options === null) return null;
  const jsonLog = options.logFormat === 'json' || (options.logFormat === undefined && env.LLMSERVE_LOG_FORMAT === 'json');
  try {
    return await runCheck(options, { env });
  } catch (err) {
    if (!isLlmserveError(err)) {
      process.stderr.write(`llmserve | error: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      return 1;
    }
    printError(err, jsonLog);
    return err.exitCode;
  }
}
