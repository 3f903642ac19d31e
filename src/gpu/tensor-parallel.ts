// Choose vLLM's tensor-parallel size and say why.
import { LlmserveError } from '../errors.js';
import type { Gpu } from './types.js';

/** The chosen size and a sentence that explains it. */
export interface TensorParallelChoice {
  size: number;
  reason: string;
  /** True when the size differs from the GPU count because of the model's heads, or because the GPUs are MIG instances. */
  reduced: boolean;
}

/**
 * Whether vLLM can split the model's heads over `size` GPUs: the attention heads divide evenly, and the key-value heads
 * (grouped-query attention) divide evenly or are replicated evenly (vLLM's QKVParallelLinear: kv % size or size % kv).
 */
export function headsFit(size: number, attentionHeads: number | null, keyValueHeads: number | null): boolean {
  return (attentionHeads === null || attentionHeads % size === 0) && (keyValueHeads === null || keyValueHeads % size === 0 || size % keyValueHeads === 0);
}

/** The heads as a phrase: `40 attention heads`, or `40 attention heads and 10 key-value heads`. */
export function headsText(attentionHeads: number | null, keyValueHeads: number | null): string {
  const kv = keyValueHeads !== null && keyValueHeads !== attentionHeads ? ` and ${keyValueHeads} key-value heads` : '';
  return `${attentionHeads ?? '?'} attention heads${kv}`;
}

/** Whether a GPU is a MIG instance (a `MIG-` UUID). */
export const isMigInstance = (g: Gpu): boolean => /^MIG-/i.test(g.uuid);

// NVIDIA's MIG user guide: "CUDA applications can only enumerate a single MIG instance", so one vLLM sees one.
const MIG_LIMIT = 'CUDA lets one process use only one MIG instance';

/** The warning for an explicit size above 1 on MIG instances (null when there is none): vLLM would see one GPU. */
export function migSizeWarning(size: number, gpus: readonly Gpu[] | null): string | null {
  if (size <= 1 || !(gpus ?? []).some(isMigInstance)) return null;
  return `tensor-parallel size ${size} on MIG instances: ${MIG_LIMIT}, so vLLM will find 1 GPU and fail to start (use 1 or auto, and to use more instances give each its own entry of models: with gpus: 1)`;
}

/**
 * `auto` = visible GPU count, reduced to the largest power of two that the model's heads fit (headsFit) when needed;
 * 1 on MIG instances (`migInstances`), as one process can use only one.
 */
export function chooseTensorParallel(requested: number | 'auto', visibleGpus: number, attentionHeads: number | null, keyValueHeads: number | null = null, migInstances = false): TensorParallelChoice {
  if (requested !== 'auto') {
    return { size: requested, reason: 'set explicitly', reduced: false };
  }
  if (migInstances && visibleGpus > 1) {
    return { size: 1, reason: `${visibleGpus} visible GPUs are MIG instances, and ${MIG_LIMIT}: using 1 (to use them all, give each its own entry of models: with gpus: 1)`, reduced: true };
  }
  if (visibleGpus === 0) {
    throw new LlmserveError('NO_GPU', 'no GPU found: tensor-parallel size "auto" needs at least one visible GPU', {
      details: [
        'Fix: run where nvidia-smi shows GPUs (and check CUDA_VISIBLE_DEVICES), or set --tensor-parallel-size N to start anyway.',
      ],
    });
  }
  const gpuReason = `${visibleGpus} visible GPU${visibleGpus === 1 ? '' : 's'}`;
  if (attentionHeads === null || headsFit(visibleGpus, attentionHeads, keyValueHeads)) {
    const grouped = keyValueHeads !== null && keyValueHeads !== attentionHeads;
    const heads = attentionHeads === null ? '' : ` (${headsText(attentionHeads, keyValueHeads)} ${grouped ? 'split' : 'divide'} evenly)`;
    return { size: visibleGpus, reason: `${gpuReason}${heads}`, reduced: false };
  }
  // vLLM fails (within seconds for the attention heads, at model load for the key-value heads) when they do not
  // split: pick the largest power of two that fits.
  let size = 1;
  for (let p = 1; p <= visibleGpus; p *= 2) if (headsFit(p, attentionHeads, keyValueHeads)) size = p;
  return {
    size,
    reason: `${gpuReason}, but the model's ${headsText(attentionHeads, keyValueHeads)} do not split over ${visibleGpus}: using ${size}, the largest power of two that fits and divides them`,
    reduced: true,
  };
}
