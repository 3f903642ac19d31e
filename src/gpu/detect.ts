// Find the GPUs: nvidia-smi first, systeminformation only when nvidia-smi is not installed.
import { queryNvidiaSmi, type RunCommand } from './nvidia-smi.js';
import { selectVisible } from './visible.js';
import type { Gpu, GpuInventory, GpuSelection } from './types.js';

/** Lists NVIDIA GPUs without nvidia-smi (injected; the real one loads systeminformation lazily). */
export type FallbackGpuLister = () => Promise<Gpu[]>;

/** Side effects of GPU detection: how nvidia-smi is run, its environment, and the fallback lister. */
export interface DetectDeps {
  run: RunCommand;
  fallback?: FallbackGpuLister;
  env?: NodeJS.ProcessEnv;
}

/** Finds every GPU the machine shows; throws GPU_QUERY when nvidia-smi exists but fails. */
export async function detectInventory(deps: DetectDeps): Promise<GpuInventory> {
  const smi = await queryNvidiaSmi(deps.run);
  if (smi !== null) return { source: 'nvidia-smi', ...smi };
  const fallback = deps.fallback ?? systeminformationGpus;
  const gpus = await fallback();
  return { source: gpus.length > 0 ? 'systeminformation' : 'none', gpus, unparsed: [], raw: '' };
}

/** Where a GPU list came from, in words: the source `none` says what was tried. */
export function gpuSourceText(source: GpuInventory['source']): string {
  return source === 'none' ? 'nvidia-smi not found, and the system lists no NVIDIA GPU' : `from ${source}`;
}

/** Finds the GPUs llmserve would use: the inventory filtered by CUDA_VISIBLE_DEVICES. */
export async function detectGpus(deps: DetectDeps): Promise<{ inventory: GpuInventory; selection: GpuSelection }> {
  const inventory = await detectInventory(deps);
  const env = deps.env ?? process.env;
  return { inventory, selection: selectVisible(inventory.gpus, env.CUDA_VISIBLE_DEVICES) };
}

/** The systeminformation fallback: NVIDIA controllers only (a machine's display adapter is not a CUDA device). */
export async function systeminformationGpus(): Promise<Gpu[]> {
  // Loaded lazily: systeminformation is large and only needed on machines without nvidia-smi.
  const si = await import('systeminformation');
  const graphics = await si.graphics();
  return graphics.controllers
    .filter((c) => /nvidia/i.test(`${c.vendor} ${c.model}`))
    .map((c, index) => ({ index, uuid: '', name: c.model, memoryMiB: typeof c.vram === 'number' && c.vram > 0 ? c.vram : null }));
}
