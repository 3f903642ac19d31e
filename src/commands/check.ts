// `llmserve check`: one-shot live health check of a running service, for probe scripts (exit 0 healthy, 1 not).
import { existsSync } from 'node:fs';
import type { CheckOptions } from '../check/args.js';
import { runChecks, workerReport, type HttpGet } from '../check/run.js';
import { resolveCheckTargets, type TargetDeps } from '../check/targets.js';
import { checkLines, noRuntimeFileLine } from '../check/text.js';
import { envTypoNotes } from '../config/env-typos.js';
import { KNOWN_ENV } from '../config/resolve.js';
import type { CliOptions } from '../config/types.js';
import { expected, parseNonNegativeSeconds, parseSeconds, parseTensorParallel } from '../config/values.js';
import { ExitCode } from '../errors.js';
import { rawGet } from '../probes/raw-http.js';

export type { CheckOptions } from '../check/args.js';

/** Default seconds each check may take. */
export const DEFAULT_CHECK_TIMEOUT = 5;

/** Side effects of `check`, with real defaults. */
export interface CheckDeps extends TargetDeps {
  get?: HttpGet;
  write?: (text: string) => void;
  /** Where warnings go (stderr): never the report's stream, which --json keeps to one JSON object. */
  warn?: (line: string) => void;
  /** Whether a probe file exists (a Ray worker's check reads them). */
  probeFileExists?: (file: string) => boolean;
}

/** Runs `llmserve check`; resolves to 0 when every check passed, 1 otherwise (bad arguments throw, exit 2). */
export async function runCheck(options: CheckOptions, deps: CheckDeps = {}): Promise<number> {
  const { json, timeout, ...cli } = options;
  const seconds = timeout === undefined ? DEFAULT_CHECK_TIMEOUT : parseSeconds(timeout, '--timeout');
  refuseUnusableFlags(cli);
  const targets = await resolveCheckTargets(cli, deps);
  // A misspelt variable (LLMSERVE_PROBEDIR) is ignored and the check looks elsewhere: said, as start and probe say it.
  const warn = deps.warn ?? ((line: string) => void process.stderr.write(`llmserve | warning: ${line}\n`));
  for (const note of envTypoNotes(deps.env ?? process.env, KNOWN_ENV)) warn(note);
  const report = targets.worker !== undefined ? workerReport(targets.worker, targets.probeDir, deps.probeFileExists ?? existsSync) : await runChecks(targets, Math.round(seconds * 1000), deps.get ?? rawGet);
  // A failure without start's runtime file may be a check of the wrong ports: said in the text, never in --json.
  const hint = !report.healthy && targets.runtimeFile === null ? [noRuntimeFileLine(targets)] : [];
  const text = json === true ? JSON.stringify(report) : [...checkLines(report), ...hint].join('\n');
  // The key never appears in a URL or a reply, but a misbehaving server could echo it back: mask it anyway.
  const safe = targets.key !== null && targets.key.length >= 4 ? text.split(targets.key).join('[redacted]') : text;
  (deps.write ?? ((t: string) => void process.stdout.write(t)))(safe + '\n');
  return report.healthy ? ExitCode.ok : ExitCode.runtime;
}

/**
 * check takes start's flags so that a probe script can pass the same command line, and ignores those it has no use
 * for; a value start would refuse is still refused here (exit 2), not left to fail the checks (exit 1).
 */
function refuseUnusableFlags(cli: CliOptions): void {
  const seconds = [['healthInterval', '--health-interval'], ['startupTimeout', '--startup-timeout'], ['stopTimeout', '--stop-timeout'], ['stallTimeout', '--stall-timeout']] as const;
  for (const [key, flag] of seconds) if (cli[key] !== undefined) parseSeconds(cli[key], flag);
  if (cli.drainDelay !== undefined) parseNonNegativeSeconds(cli.drainDelay, '--drain-delay');
  if (cli.engineStallTimeout !== undefined) parseNonNegativeSeconds(cli.engineStallTimeout, '--engine-stall-timeout');
  if (cli.drainTimeout !== undefined) parseNonNegativeSeconds(cli.drainTimeout, '--drain-timeout');
  if (cli.tensorParallelSize !== undefined) parseTensorParallel(cli.tensorParallelSize, '--tensor-parallel-size');
  if (cli.restart !== undefined && cli.restart !== 'on-failure' && cli.restart !== 'never') throw expected('--restart', '"on-failure" or "never"', cli.restart);
}
