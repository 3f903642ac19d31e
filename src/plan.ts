// What `start` would do, worked out without starting anything: shared by `start` (which stops at the first
// problem) and `probe` (which lists them all).
import { LlmserveError } from './errors.js';
import type { Config } from './config/types.js';
import { detectGpus, chooseTensorParallel, type DetectDeps, type GpuInventory, type GpuSelection, type TensorParallelChoice } from './gpu/index.js';
import { buildVllmArgv, buildVllmEnv, inspectModel, type ModelInfo } from './engine/index.js';

/** The plan: GPUs, tensor-parallel size, the vLLM command, and every problem found on the way. */
export interface Plan {
  config: Config;
  inventory: GpuInventory | null;
  selection: GpuSelection | null;
  tensorParallel: TensorParallelChoice | null;
  model: ModelInfo;
  /** The whole vLLM command, one token per element (the size falls back to 1 when it could not be chosen). */
  argv: string[];
  env: NodeJS.ProcessEnv;
  warnings: string[];
  /** Problems that stop `start`, first one first. */
  problems: LlmserveError[];
}

/** Works out the plan; never throws for machine problems, it records them. */
export async function makePlan(config: Config, deps: DetectDeps & { cwd?: string }): Promise<Plan> {
  const env = deps.env ?? process.env;
  const problems: LlmserveError[] = [];
  const warnings: string[] = [];
  let inventory: GpuInventory | null = null;
  let selection: GpuSelection | null = null;
  try {
    ({ inventory, selection } = await detectGpus(deps));
    warnings.push(...selection.warnings);
    if (inventory.unparsed.length > 0) {
      warnings.push(`nvidia-smi printed lines llmserve could not parse (GPU details unknown): ${JSON.stringify(inventory.unparsed.slice(0, 3).join(' | '))}`);
    }
  } catch (err) {
    if (!(err instanceof LlmserveError)) throw err;
    // With an explicit size, a broken nvidia-smi is worth a warning, not a refusal: vLLM will find out itself.
    if (config.vllm.tensorParallelSize === 'auto') problems.push(err);
    else warnings.push(err.message);
  }
  const model = await inspectModel(config.model, deps.cwd);
  if (model.isLocalPath && !model.exists) {
    problems.push(
      new LlmserveError('MODEL_PATH', `model directory ${config.model} does not exist`, {
        details: ['Fix: give the directory that holds config.json and the weights with --model PATH (or model:), or a hub id such as Qwen/Qwen2.5-1.5B-Instruct.'],
      }),
    );
  } else if (model.exists && !model.hasConfigJson) {
    warnings.push(`model directory ${config.model} has no config.json; vLLM will probably refuse it`);
  }
  let tensorParallel: TensorParallelChoice | null = null;
  if (selection !== null || config.vllm.tensorParallelSize !== 'auto') {
    try {
      tensorParallel = chooseTensorParallel(config.vllm.tensorParallelSize, selection?.gpus.length ?? 0, model.attentionHeads);
    } catch (err) {
      if (!(err instanceof LlmserveError)) throw err;
      problems.push(err);
    }
  }
  if (inventory?.source === 'nvidia-smi' && selection && inventory.gpus.length === 0 && inventory.unparsed.length > 0 && config.vllm.tensorParallelSize === 'auto') {
    problems.unshift(
      new LlmserveError('GPU_QUERY', `nvidia-smi output could not be parsed: ${JSON.stringify(inventory.raw.slice(0, 300))}`, {
        details: ['Fix: check that nvidia-smi works in this container, or set --tensor-parallel-size N explicitly.'],
      }),
    );
  }
  if (tensorParallel?.reduced) warnings.push(`tensor-parallel size ${tensorParallel.size}: ${tensorParallel.reason}`);
  if (tensorParallel && selection && config.vllm.tensorParallelSize !== 'auto' && tensorParallel.size > selection.gpus.length && inventory?.source === 'nvidia-smi') {
    warnings.push(`tensor-parallel size ${tensorParallel.size} is larger than the ${selection.gpus.length} visible GPU(s)`);
  }
  const argv = buildVllmArgv(config, tensorParallel?.size ?? 1);
  return { config, inventory, selection, tensorParallel, model, argv, env: buildVllmEnv(config, env), warnings, problems };
}
