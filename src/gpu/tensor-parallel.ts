// Choose vLLM's tensor-parallel size and say why.
import { LlmserveError } from '../errors.js';

/** The chosen size and a sentence that explains it. */
export interface TensorParallelChoice {
  size: number;
  reason: string;
  /** True when the size differs from the GPU count because of the model's heads. */
  reduced: boolean;
}

/** `auto` = visible GPU count, reduced to the largest power of two dividing num_attention_heads when needed. */
export function chooseTensorParallel(requested: number | 'auto', visibleGpus: number, attentionHeads: number | null): TensorParallelChoice {
  if (requested !== 'auto') {
    return { size: requested, reason: 'set explicitly', reduced: false };
  }
  if (visibleGpus === 0) {
    throw new LlmserveError('NO_GPU', 'no GPU found: tensor-parallel size "auto" needs at least one visible GPU', {
      details: [
        'Fix: run where nvidia-smi shows GPUs (and check CUDA_VISIBLE_DEVICES), or set --tensor-parallel-size N to start anyway.',
      ],
    });
  }
  const gpuReason = `${visibleGpus} visible GPU${visibleGpus === 1 ? '' : 's'}`;
  if (attentionHeads === null || attentionHeads % visibleGpus === 0) {
    const heads = attentionHeads === null ? '' : ` (${attentionHeads} attention heads divide evenly)`;
    return { size: visibleGpus, reason: `${gpuReason}${heads}`, reduced: false };
  }
  // vLLM fails within seconds when heads % tp != 0: pick the largest power of two that fits and divides.
  let size = 1;
  for (let p = 1; p <= visibleGpus; p *= 2) if (attentionHeads % p === 0) size = p;
  return {
    size,
    reason: `${gpuReason}, but the model's ${attentionHeads} attention heads are not divisible by ${visibleGpus}: using ${size}, the largest power of two that fits and divides them`,
    reduced: true,
  };
}
