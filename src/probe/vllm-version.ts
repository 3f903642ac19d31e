// `vllm --version`: run it, and read a version number out of whatever it printed.
import type { RunCommand, RunResult } from '../gpu/nvidia-smi.js';
import { interpreterText, isUnrunnable, spawnErrorText } from '../supervisor/spawn-failure.js';
import { missingInterpreter } from '../util/which.js';
import type { VllmVersionFact } from './types.js';

const VERSION_LINE = /^(?:vllm\s+)?v?(\d+\.\d+(?:\.\d+)?(?:[.+-][\w.+-]*)?)$/i;

/** Reads the version from `vllm --version` output: the last line that is only a version number (`vllm ` before it allowed); null otherwise. */
export function parseVllmVersion(output: string): string | null {
  const lines = output.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = VERSION_LINE.exec(lines[i] ?? '');
    if (m?.[1] !== undefined) return m[1];
  }
  return null;
}

/** Turns the outcome of `COMMAND --version` into the fact `probe` reports (an unknown version is not an error). */
export function vllmVersionFact(command: string, result: RunResult): VllmVersionFact {
  const raw = `${result.stdout}\n${result.stderr}`.trim();
  const shown = raw.length > 400 ? `${raw.slice(0, 400)}…` : raw;
  if (result.notFound) return { command, found: false, version: null, raw: '', exitCode: null };
  // start cannot spawn it either (exit 2, spawn-failure.ts): not executable is a problem, not a version unknown.
  if (isUnrunnable(result.spawnError)) return { command, found: false, version: null, raw: spawnErrorText(command, result.spawnError!), exitCode: null };
  return { command, found: true, version: result.exitCode === 0 ? parseVllmVersion(result.stdout) ?? parseVllmVersion(raw) : null, raw: shown, exitCode: result.exitCode };
}

/** Runs `COMMAND --version` with a short timeout; never throws. */
export async function probeVllmVersion(command: string, run: RunCommand, env?: NodeJS.ProcessEnv): Promise<VllmVersionFact> {
  try {
    const result = await run(command, ['--version'], { timeoutMs: 30_000, ...(env ? { env } : {}) });
    // The kernel says ENOENT for a script whose interpreter is gone too (a moved virtualenv): not "not found"; and
    // `#!/usr/bin/env python3` runs env, which exits 127 without a python3 and 126 with one it cannot run: start
    // refuses each (start-checks.ts).
    if (result.notFound || result.spawnError === 'ENOENT' || result.spawnError === 'EACCES' || result.exitCode === 127 || result.exitCode === 126) {
      const interpreter = missingInterpreter(command, env ?? process.env);
      if (interpreter !== null) return { command, found: false, version: null, raw: interpreterText(interpreter), exitCode: null };
    }
    return vllmVersionFact(command, result);
  } catch (err) {
    return { command, found: false, version: null, raw: (err as Error).message, exitCode: null };
  }
}
