// Runs short external programs (nvidia-smi, `vllm --version`) and reports, never throws, their outcome.
import { execa } from 'execa';
import type { RunCommand } from '../gpu/nvidia-smi.js';

/** The real RunCommand: execa with a timeout, no shell, output captured. */
export const runCommand: RunCommand = async (file, args, options = {}) => {
  const result = await execa(file, args, {
    reject: false,
    timeout: options.timeoutMs ?? 15_000,
    env: options.env,
    extendEnv: options.env === undefined,
    stdin: 'ignore',
    // Timed out or cancelled (llmserve is stopping): SIGKILL at once. These are queries with nothing to save, and one
    // stuck in a driver call ignores SIGTERM: with execa's SIGTERM, its 5 s wait for a SIGKILL came on top of the
    // timeout (a restart waited 10 s on a hung nvidia-smi), and on a stop the query outlived llmserve.
    killSignal: 'SIGKILL',
    ...(options.signal === undefined ? {} : { cancelSignal: options.signal }),
  });
  const code = (result as { code?: string }).code;
  // A spawn that failed has an errno code and no exit code (a timeout or a signal has neither).
  const spawnError = result.exitCode === undefined && typeof code === 'string' ? code : undefined;
  return {
    exitCode: result.exitCode ?? null,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
    notFound: code === 'ENOENT',
    ...(spawnError === undefined ? {} : { spawnError }),
    ...(result.timedOut === true ? { timedOut: true } : {}),
  };
};
