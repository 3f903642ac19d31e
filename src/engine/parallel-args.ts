// The parallelism a user asks of vLLM in `vllm.args` besides the tensor-parallel size llmserve chooses.

/** Data-parallel and pipeline-parallel sizes found in vLLM's extra arguments (1 when not given). */
export interface OtherParallelism {
  dataParallel: number;
  pipelineParallel: number;
}

const FLAGS: Record<string, keyof OtherParallelism> = {
  '--data-parallel-size': 'dataParallel',
  '-dp': 'dataParallel',
  '--pipeline-parallel-size': 'pipelineParallel',
  '-pp': 'pipelineParallel',
};

/**
 * Reads `--data-parallel-size N` / `-dp N` and `--pipeline-parallel-size N` / `-pp N` (also `--flag=N`) from vLLM's
 * arguments. Why: each data-parallel rank and pipeline stage takes its own tensor-parallel group of GPUs, so
 * `auto` must split the GPUs among them instead of giving every rank all of them. A value that is not a positive
 * integer is left for vLLM to refuse (counted as 1 here).
 */
export function otherParallelism(args: readonly string[]): OtherParallelism {
  const out: OtherParallelism = { dataParallel: 1, pipelineParallel: 1 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = FLAGS[name];
    if (key === undefined) continue;
    const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    const n = Number(value);
    if (Number.isInteger(n) && n > 0) out[key] = n;
  }
  return out;
}
