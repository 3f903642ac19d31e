// Which GPUs each model gets when several share a node: explicit index lists first, then counts in order.
import { LlmserveError } from '../errors.js';
import type { Gpu } from './types.js';

/** One model's wish: nvidia-smi indices, a count, or null = every visible GPU. */
export interface GpuRequest {
  name: string;
  gpus: number[] | number | null;
}

/** The GPUs per model (same order as the requests; null = could not be assigned) and every problem found. */
export interface GpuAssignment {
  gpus: (Gpu[] | null)[];
  problems: LlmserveError[];
}

const problem = (message: string, fix: string) => new LlmserveError('NO_GPU', message, { details: [`Fix: ${fix}`] });

/** Who owns a GPU is keyed by its UUID: MIG instances from CUDA_VISIBLE_DEVICES all have index -1. */
const gpuKey = (g: Gpu): string => (g.uuid !== '' ? g.uuid : `#${g.index}`);

/** A GPU as messages show it: its nvidia-smi index, or its UUID for a MIG instance (which has no index). */
export const gpuLabel = (g: Gpu): string => (g.index >= 0 ? String(g.index) : g.uuid);

// MIG instances come from CUDA_VISIBLE_DEVICES without an nvidia-smi index, so no index list can name them.
const notVisibleFix = (visible: readonly Gpu[]): string =>
  visible.some((g) => g.index < 0)
    ? 'MIG instances have no nvidia-smi index: give this entry a count instead (gpus: 1 takes one instance).'
    : 'list GPU indices as nvidia-smi shows them, among the visible ones (see llmserve probe).';

/** Assigns the visible GPUs to the models; pure. Overlapping, missing and too few GPUs are problems. */
export function assignGpus(requests: readonly GpuRequest[], visible: readonly Gpu[]): GpuAssignment {
  const problems: LlmserveError[] = [];
  const owner = new Map<string, string>();
  const out: (Gpu[] | null)[] = requests.map(() => null);
  const shown = visible.map(gpuLabel).join(', ') || 'none';
  requests.forEach((r, i) => {
    if (r.gpus === null) {
      if (requests.length > 1) problems.push(problem(`model "${r.name}" has no gpus: with several models each entry needs its GPUs`, 'add gpus: [0, 1] (nvidia-smi indices) or gpus: 2 (a count) to every entry of models:.'));
      else out[i] = [...visible];
      return;
    }
    if (typeof r.gpus === 'number') return;
    const list: Gpu[] = [];
    for (const index of r.gpus) {
      const gpu = visible.find((g) => g.index === index);
      if (gpu === undefined) {
        problems.push(problem(`model "${r.name}": GPU ${index} is not visible (visible: ${shown})`, notVisibleFix(visible)));
        continue;
      }
      const other = owner.get(gpuKey(gpu));
      if (other !== undefined) {
        problems.push(problem(`models "${other}" and "${r.name}" both claim GPU ${index}`, 'give each model its own GPUs: the lists in models[].gpus must not overlap.'));
        continue;
      }
      owner.set(gpuKey(gpu), r.name);
      list.push(gpu);
    }
    out[i] = list;
  });
  // Counts take the lowest free GPUs (MIG instances in CUDA_VISIBLE_DEVICES order), in the order of the entries.
  requests.forEach((r, i) => {
    if (typeof r.gpus !== 'number') return;
    const free = visible.filter((g) => !owner.has(gpuKey(g))).slice(0, r.gpus);
    if (free.length < r.gpus) {
      problems.push(problem(`model "${r.name}" asks for ${r.gpus} GPU(s) but only ${free.length} of the ${visible.length} visible are left`, 'lower the counts, or free GPUs from the other entries.'));
      return;
    }
    for (const g of free) owner.set(gpuKey(g), r.name);
    out[i] = free;
  });
  return { gpus: out, problems };
}

/** CUDA_VISIBLE_DEVICES for a set of GPUs: their UUIDs when all are known (CUDA's own order may differ from nvidia-smi's indices), else the indices. */
export function visibleDevicesFor(gpus: readonly Gpu[]): string {
  return gpus.every((g) => g.uuid !== '') ? gpus.map((g) => g.uuid).join(',') : gpus.map((g) => String(g.index)).join(',');
}
