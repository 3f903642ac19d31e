// What `start` would do, worked out without starting anything: shared by `start` (which stops at the first
// problem) and `probe` (which lists them all).
import { LlmserveError, usageError } from './errors.js';
import { headOwnedArgReason } from './config/extra-args.js';
import type { Config, ModelConfig } from './config/types.js';
import {
  assignGpus, chooseTensorParallel, detectGpus, gpuLabel, headsFit, headsText, isMigInstance, migSizeWarning, visibleDevicesFor, type DetectDeps, type Gpu, type GpuInventory, type GpuSelection, type TensorParallelChoice, type RunCommand,
} from './gpu/index.js';
import { buildVllmArgv, buildVllmEnv, inspectModel, modelPathFindings, withoutKeyVariables, type ModelInfo } from './engine/index.js';
import { otherParallelism } from './engine/parallel-args.js';
import { droppedLoraWarning, loraModuleNames, loraNameClashes } from './engine/lora-args.js';

/** One model's part of the plan: its GPUs, sizes and vLLM command. */
export interface ModelPlan {
  config: ModelConfig;
  /** The GPUs it gets (nvidia-smi's), or null when they could not be assigned or detected. */
  gpus: Gpu[] | null;
  /** The CUDA_VISIBLE_DEVICES its vLLM gets; null = inherited unchanged (one model on every visible GPU). */
  cudaVisibleDevices: string | null;
  tensorParallel: TensorParallelChoice | null;
  /** `--pipeline-parallel-size` (the node count on a Ray head), or null when not set. */
  pipelineParallelSize: number | null;
  model: ModelInfo;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/** The plan: GPUs, tensor-parallel size, the vLLM command, and every problem found on the way. */
export interface Plan {
  config: Config;
  inventory: GpuInventory | null;
  selection: GpuSelection | null;
  /** One entry per model, in the config's order; the fields below repeat the first. */
  models: ModelPlan[];
  tensorParallel: TensorParallelChoice | null;
  model: ModelInfo;
  /** The whole vLLM command, one token per element (the size falls back to 1 when it could not be chosen). */
  argv: string[];
  env: NodeJS.ProcessEnv;
  warnings: string[];
  /** Problems that stop `start`, first one first. */
  problems: LlmserveError[];
}

/** The Config as one model's vLLM sees it: that model's name, port, size, args and env in the usual places. */
export function modelView(config: Config, m: ModelConfig): Config {
  return {
    ...config,
    model: m.model,
    servedModelName: m.servedModelName,
    vllm: { ...config.vllm, port: m.port, tensorParallelSize: m.tensorParallelSize, args: m.args, env: m.env },
  };
}

/** Works out the plan; never throws for machine problems, it records them. */
export async function makePlan(config: Config, deps: DetectDeps & { cwd?: string }): Promise<Plan> {
  const env = deps.env ?? process.env;
  const problems: LlmserveError[] = [];
  const warnings: string[] = [];
  const several = config.models.length > 1;
  const anyAuto = config.models.some((m) => m.tensorParallelSize === 'auto');
  let inventory: GpuInventory | null = null;
  let selection: GpuSelection | null = null;
  // The GPUs vLLM will see: CUDA_VISIBLE_DEVICES as its environment will have it (the config's environment and,
  // with one model, its vllm.env win over llmserve's own, as in buildVllmEnv), so the size fits what vLLM sees.
  const cvd = (several ? undefined : config.models[0]?.env.CUDA_VISIBLE_DEVICES) ?? config.environment.CUDA_VISIBLE_DEVICES;
  const detectEnv = cvd === undefined ? env : { ...env, CUDA_VISIBLE_DEVICES: cvd };
  // nvidia-smi never needs llmserve's keys (a child's environment is readable in /proc by the same user).
  const keyless = withoutKeyVariables(env, config.secrets.envNames);
  const run: RunCommand = (file, args, options = {}) => deps.run(file, args, { env: keyless, ...options });
  try {
    ({ inventory, selection } = await detectGpus({ ...deps, run, env: detectEnv }));
    warnings.push(...selection.warnings);
    if (inventory.unparsed.length > 0) {
      warnings.push(`nvidia-smi printed lines llmserve could not parse, or a GPU reporting an error (check it before vLLM uses it): ${JSON.stringify(inventory.unparsed.slice(0, 3).join(' | '))}`);
    }
  } catch (err) {
    if (!(err instanceof LlmserveError)) throw err;
    // With an explicit size, a broken nvidia-smi is worth a warning, not a refusal: vLLM will find out itself. Not with
    // several models, nor with one entry's `gpus`: without the GPUs known none gets its CUDA_VISIBLE_DEVICES, and every
    // vLLM would load on GPU 0 (another job's, perhaps).
    const assigned = several || config.models.some((m) => m.gpus !== null);
    if (anyAuto) problems.push(err);
    else if (assigned) {
      problems.push(
        new LlmserveError(err.code, `${err.message}; ${several ? 'with several models llmserve needs the GPUs to give each model its own' : 'llmserve needs the GPUs to give the model the ones its gpus names'}`, {
          details: ['Fix: check the NVIDIA driver and that the container was given GPUs: nvidia-smi must work in it, since models[].gpus name its GPUs.'],
        }),
      );
    } else warnings.push(err.message);
  }
  if (inventory?.source === 'nvidia-smi' && selection && inventory.gpus.length === 0 && inventory.unparsed.length > 0 && anyAuto) {
    problems.unshift(
      new LlmserveError('GPU_QUERY', `nvidia-smi output could not be parsed: ${JSON.stringify(inventory.raw.slice(0, 300))}`, {
        details: ['Fix: check that nvidia-smi works in this container, or set --tensor-parallel-size N explicitly.'],
      }),
    );
  }
  const assignment = selection === null ? null : assignGpus(config.models.map((m) => ({ name: m.servedModelName, gpus: m.gpus })), selection.gpus);
  problems.push(...(assignment?.problems ?? []));
  const nodes = config.cluster.role === 'head' ? config.cluster.nodes : null;

  const models: ModelPlan[] = [];
  for (const [i, m] of config.models.entries()) {
    const named = (text: string) => (several ? `model "${m.servedModelName}": ${text}` : text);
    const gpus = assignment?.gpus[i] ?? null;
    const model = await inspectModel(m.model, deps.cwd);
    const findings = await modelPathFindings(model, m.args, named, deps.cwd);
    problems.push(...findings.problems);
    warnings.push(...findings.warnings);
    const headOwned = nodes === null ? null : headOwnedArgReason(m.args);
    if (headOwned !== null) problems.push(usageError(named(headOwned)));
    // Data-parallel ranks and pipeline stages in vllm.args each take their own tensor-parallel group of GPUs.
    const { dataParallel, pipelineParallel } = otherParallelism(m.args);
    const groups = dataParallel * pipelineParallel;
    const groupsText = [dataParallel > 1 ? `data-parallel size ${dataParallel}` : '', pipelineParallel > 1 ? `pipeline-parallel size ${pipelineParallel}` : ''].filter(Boolean).join(' x ');
    let tensorParallel: TensorParallelChoice | null = null;
    if (groups > 1 && gpus !== null && gpus.length > 0 && gpus.length < groups && m.tensorParallelSize === 'auto') {
      problems.push(
        new LlmserveError('NO_GPU', named(`${groupsText} in vllm.args needs at least ${groups} GPUs, and ${gpus.length} ${gpus.length === 1 ? 'is' : 'are'} available`), {
          details: ['Fix: lower --data-parallel-size / --pipeline-parallel-size in vllm.args, or give this model more GPUs.'],
        }),
      );
    } else if (gpus !== null || m.tensorParallelSize !== 'auto') {
      try {
        const share = groups > 1 ? Math.floor((gpus?.length ?? 0) / groups) : (gpus?.length ?? 0);
        const choice = chooseTensorParallel(m.tensorParallelSize, share, model.attentionHeads, model.keyValueHeads, gpus?.some(isMigInstance) ?? false);
        tensorParallel = groups > 1 && m.tensorParallelSize === 'auto' ? { ...choice, reason: `${gpus?.length ?? 0} GPUs shared by ${groupsText}: ${share} per group; ${choice.reason}` } : choice;
      } catch (err) {
        if (!(err instanceof LlmserveError)) throw err;
        if (!(several && gpus === null)) problems.push(new LlmserveError(err.code, named(err.message), { details: err.details }));
      }
    }
    if (tensorParallel?.reduced) warnings.push(named(`tensor-parallel size ${tensorParallel.size}: ${tensorParallel.reason}`));
    // `auto` fits the size to the heads only when it can read them: a hub id's config.json is not here before vLLM
    // downloads it, and a size the heads do not divide (28 heads over 6 GPUs) fails vLLM only then.
    // A local path that is missing, or has no config.json, is its own problem already (model-path.ts): no guess here.
    if (m.tensorParallelSize === 'auto' && tensorParallel !== null && tensorParallel.size > 1 && model.attentionHeads === null && (!model.isLocalPath || model.hasConfigJson)) {
      const [where, or] = model.isLocalPath ? ['its config.json has no num_attention_heads', ''] : ['a hub id: its config.json is not here before vLLM downloads it', ' (or use a local path)'];
      warnings.push(named(`tensor-parallel size ${tensorParallel.size} (auto) is every visible GPU: the model's attention heads are unknown (${where}), and vLLM refuses a size they do not divide; set --tensor-parallel-size to one that does${or}`));
    }
    if (tensorParallel && gpus && m.tensorParallelSize !== 'auto' && tensorParallel.size * groups > gpus.length && inventory?.source === 'nvidia-smi') {
      const total = groups > 1 ? `tensor-parallel size ${tensorParallel.size} x ${groupsText} = ${tensorParallel.size * groups} GPUs` : `tensor-parallel size ${tensorParallel.size}`;
      warnings.push(named(`${total} is larger than the ${gpus.length} ${several || m.gpus !== null ? 'assigned' : 'visible'} GPU(s)`));
    }
    if (m.tensorParallelSize !== 'auto' && model.attentionHeads !== null && !headsFit(m.tensorParallelSize, model.attentionHeads, model.keyValueHeads)) {
      // vLLM refuses this within seconds of starting (or, for the key-value heads, once it loads the model); say it
      // before, with a size that would work.
      const fits = largestFitUpTo(m.tensorParallelSize, model.attentionHeads, model.keyValueHeads);
      warnings.push(named(`tensor-parallel size ${m.tensorParallelSize} does not split the model's ${headsText(model.attentionHeads, model.keyValueHeads)}: vLLM will refuse it (use a size such as ${fits}, or auto)`));
    }
    const mig = m.tensorParallelSize === 'auto' ? null : migSizeWarning(m.tensorParallelSize, gpus);
    if (mig !== null) warnings.push(named(mig));
    // The single-model form keeps the inherited CUDA_VISIBLE_DEVICES; an entry with gpus gets exactly those.
    const cudaVisibleDevices = gpus !== null && m.gpus !== null ? visibleDevicesFor(gpus) : null;
    const view = modelView(config, m);
    const cluster = nodes === null ? [] : ['--distributed-executor-backend', 'ray', '--pipeline-parallel-size', String(nodes)];
    const argv = [...buildVllmArgv(view, tensorParallel?.size ?? 1), ...cluster];
    const vllmEnv = buildVllmEnv(view, env);
    if (cudaVisibleDevices !== null && gpus !== null) {
      const overridden = gpusWinWarning(config.configFile, m.env.CUDA_VISIBLE_DEVICES, cudaVisibleDevices, gpus);
      if (overridden !== null) warnings.push(named(overridden));
      vllmEnv.CUDA_VISIBLE_DEVICES = cudaVisibleDevices;
    }
    const dropped = droppedLoraWarning(argv);
    if (dropped !== null) warnings.push(named(dropped));
    models.push({ config: m, gpus, cudaVisibleDevices, tensorParallel, pipelineParallelSize: nodes, model, argv, env: vllmEnv });
  }
  if (several) {
    const clashes = loraNameClashes(models.map((m) => ({ name: m.config.servedModelName, loras: loraModuleNames(m.argv) })), config.proxy.modelAliases);
    for (const clash of clashes) problems.push(new LlmserveError('USAGE', clash, { details: ['Fix: give the adapter a name of its own in --lora-modules (each public name can reach one vLLM only).'] }));
  }
  const first = models[0]!;
  return { config, inventory, selection, models, tensorParallel: first.tensorParallel, model: first.model, argv: first.argv, env: first.env, warnings, problems };
}

/**
 * The warning for a CUDA_VISIBLE_DEVICES in vllm.env that an entry's `gpus` replaces; null when none is set or it
 * says the same. Why: the entry's GPUs are what the assignment checked, so its value wins over the env's.
 */
function gpusWinWarning(file: string | null, configured: string | undefined, assigned: string, gpus: readonly Gpu[]): string | null {
  if (configured === undefined || configured === assigned) return null;
  const indices = gpus.map(gpuLabel).join(', ');
  return `vllm.env sets CUDA_VISIBLE_DEVICES=${configured}${file === null ? '' : ` (${file})`}, but gpus wins: its vLLM gets CUDA_VISIBLE_DEVICES=${assigned} (GPU ${indices}); remove CUDA_VISIBLE_DEVICES from vllm.env, or list the GPUs you meant in gpus`;
}

/** The largest size not above `max` that the model's heads fit (headsFit; at least 1). */
function largestFitUpTo(max: number, attentionHeads: number, keyValueHeads: number | null): number {
  for (let d = Math.min(attentionHeads, max); d > 1; d--) if (headsFit(d, attentionHeads, keyValueHeads)) return d;
  return 1;
}
