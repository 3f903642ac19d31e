// The one place that exits the process: run the CLI, report errors, exit with the documented code.
import { LlmserveError, ExitCode } from './errors.js';
import { createLogger } from './log.js';
import { runEmergencyCleanups } from './util/emergency.js';

/** Runs llmserve with the given arguments and exits with its code. */
export async function main(argv: string[]): Promise<void> {
  const logger = createLogger({ format: wantsJson(argv) ? 'json' : 'text' });
  const fatal = (err: unknown) => {
    // Nothing may outlive llmserve: kill the children's process groups before dying.
    runEmergencyCleanups();
    logger.error(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(ExitCode.runtime);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  let code: number;
  try {
    const { runCli } = await import('./cli.js');
    code = await runCli(argv);
  } catch (err) {
    if (!(err instanceof LlmserveError)) return fatal(err);
    logger.error(err.message, { code: err.code });
    for (const line of err.details) logger.child('llmserve', line, 'stderr');
    code = err.exitCode;
  }
  process.exit(code);
}

function wantsJson(argv: string[]): boolean {
  const i = argv.indexOf('--log-format');
  return argv.includes('--log-format=json') || (i >= 0 && argv[i + 1] === 'json') || process.env.LLMSERVE_LOG_FORMAT === 'json';
}
