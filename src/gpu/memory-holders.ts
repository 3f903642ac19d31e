// Which processes hold GPU memory, as nvidia-smi lists them: the supervisor waits for an old vLLM's to be gone.
import { runCommand } from '../util/run.js';
import { COMPUTE_APPS_QUERY_ARGS, parseComputeApps, queryFailure } from './nvidia-smi.js';

/** Pids holding GPU memory according to nvidia-smi; null when it is not installed; why, when it gave no answer. */
export async function gpuMemoryHolders(env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<number[] | null | { failed: string }> {
  const timeoutMs = 5000;
  const result = await runCommand('nvidia-smi', COMPUTE_APPS_QUERY_ARGS, { timeoutMs, env, ...(signal === undefined ? {} : { signal }) });
  if (result.notFound) return null;
  if (result.exitCode !== 0) return { failed: queryFailure(result, timeoutMs) };
  return parseComputeApps(result.stdout).map((a) => a.pid);
}
