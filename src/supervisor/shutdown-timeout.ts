// vLLM's own drain on SIGTERM (`--shutdown-timeout N`, re-added in March 2026): chosen below llmserve's stop timeout.
import { argparseArg, spellsFlag } from '../engine/argparse-spelling.js';

/** The flag, as llmserve adds it (one `--flag=value` token, so that dropping it leaves no stray value behind). */
export const SHUTDOWN_TIMEOUT_FLAG = '--shutdown-timeout';

/** Seconds to give vLLM's drain: well inside the stop timeout (5 s of margin, or half when that is short); null when under 1 s. */
export function shutdownTimeoutFor(stopTimeoutS: number): number | null {
  const n = Math.floor(stopTimeoutS >= 10 ? stopTimeoutS - 5 : stopTimeoutS / 2);
  return n >= 1 ? n : null;
}

/**
 * True when the user's vLLM args already set --shutdown-timeout (any spelling vLLM accepts). Why prefixes count:
 * vLLM's argparse takes an abbreviation (`--shutdown 60`) for the flag, and the one llmserve appends would override it.
 */
export function setsShutdownTimeout(args: readonly string[]): boolean {
  // `--s` is as short as a prefix may be: argparse itself refuses the ambiguous ones (`--s` starts --seed too).
  return args.some((a) => spellsFlag(argparseArg(a).name, SHUTDOWN_TIMEOUT_FLAG, '--s'));
}

/** argv plus `--shutdown-timeout=N`, unless the user set it or the stop timeout is too short; says whether it added it. */
export function withShutdownTimeout(argv: readonly string[], stopTimeoutS: number): { argv: string[]; added: boolean } {
  const n = shutdownTimeoutFor(stopTimeoutS);
  if (n === null || setsShutdownTimeout(argv)) return { argv: [...argv], added: false };
  return { argv: [...argv, `${SHUTDOWN_TIMEOUT_FLAG}=${n}`], added: true };
}
