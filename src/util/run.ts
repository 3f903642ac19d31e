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
    // Cancelled: SIGTERM, then SIGKILL after 1 s (not execa's 5 s), so the caller's 2 s wait sees it gone.
    ...(options.signal === undefined ? {} : { cancelSignal: options.signal, forceKillAfterDelay: 1000 }),
  });
  const notFound = (result as { code?: string }).code === 'ENOENT';
  return {
    exitCode: result.exitCode ?? null,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
    notFound,
  };
};
