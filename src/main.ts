// The one place that exits the process: run the CLI, report errors, exit with the documented code. (The lean
// `check`, which never loads this module for its speed, exits in bin/llmserve.js with the code its checkMain gives.)
import { LlmserveError, ExitCode } from './errors.js';
import { createErrorReporter, createLogger } from './log.js';
import { runEmergencyCleanups } from './util/emergency.js';
import { describeWriteError, guardOutput, stdoutFailed } from './util/output.js';

/** Runs llmserve with the given arguments and exits with its code. */
export async function main(argv: string[]): Promise<void> {
  // The internal proxy child runs through here too: its own lines carry its name. A command that configures its
  // own logger (`start`: the config's log_format, the --log-file tee) hands it to `errors`, so the last lines go there too.
  const errors = createErrorReporter(createLogger({ format: wantsJson(argv) ? 'json' : 'text', source: argv[0] === 'proxy' ? 'proxy' : 'llmserve' }));
  const fatal = (err: unknown) => {
    // Nothing may outlive llmserve: kill the children's process groups before dying.
    runEmergencyCleanups();
    errors.logger.error(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(ExitCode.runtime);
  };
  // Node's own warnings (deprecations and the like) go through the logger, so that
  // in JSON mode every line stays one JSON object.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => errors.logger.warn(`${warning.name}: ${warning.message}`, { source_kind: 'node-warning' }));
  // Why a listener that does nothing: Node starts with SIGXFSZ ignored, so a write past a file-size limit (`ulimit
  // -f`) fails with EFBIG, which every writer here handles (probe files are then written empty). But a listener added
  // and removed restores the signal's default action, not "ignored", as an exit hook around a child does (execa's did,
  // around every nvidia-smi): the next such write killed llmserve (exit 153) with its children left to the guard.
  process.on('SIGXFSZ', () => {});
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  // A closed terminal or pipe is not a crash: `start` stops gracefully (util/output.ts); other commands finish.
  guardOutput();
  let code: number;
  try {
    const { runCli } = await import('./cli.js');
    code = await runCli(argv, errors);
    // A command whose output is its product (a key, a report) did not do its job when stdout had no room for it;
    // `start` serves through that (it said so), and its exit code says how the service ended.
    const failed = argv[0] === 'start' || argv[0] === 'proxy' ? null : stdoutFailed();
    if (code === 0 && failed !== null) throw outputError(failed);
  } catch (err) {
    if (!(err instanceof LlmserveError)) return fatal(err);
    const { logger } = errors;
    logger.error(err.message, { code: err.code });
    // The details (vLLM's last lines, the diagnosis, the fix) belong to the error: a collector keeping `error` keeps them.
    for (const line of err.details) logger.child('llmserve', line, 'stderr', 'error');
    code = err.exitCode;
  }
  process.exit(code);
}

/** The error for a command's output that could not be written whole (exit 1). */
function outputError(code: string): LlmserveError {
  return new LlmserveError('OUTPUT', `cannot write the output to stdout (${describeWriteError(code)}); it is missing or cut short`, {
    details: ['Fix: free some space where stdout goes, or send it elsewhere, and run the command again.'],
  });
}

function wantsJson(argv: string[]): boolean {
  const i = argv.indexOf('--log-format');
  return argv.includes('--log-format=json') || (i >= 0 && argv[i + 1] === 'json') || process.env.LLMSERVE_LOG_FORMAT === 'json';
}
