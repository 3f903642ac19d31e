// Apply CUDA_VISIBLE_DEVICES to the GPUs nvidia-smi reports.
import type { Gpu, GpuSelection } from './types.js';

/** Selects the GPUs that CUDA_VISIBLE_DEVICES leaves visible (indices or GPU-/MIG- UUIDs; "", -1, none = none). */
export function selectVisible(gpus: readonly Gpu[], cudaVisibleDevices: string | undefined): GpuSelection {
  if (cudaVisibleDevices === undefined) return { gpus: [...gpus], cudaVisibleDevices: null, warnings: [] };
  const value = cudaVisibleDevices.trim();
  if (value === '' || value === '-1' || value.toLowerCase() === 'none' || value.toLowerCase() === 'nodevfiles') {
    return { gpus: [], cudaVisibleDevices, warnings: [] };
  }
  const selected: Gpu[] = [];
  const warnings: string[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    const gpu = matchEntry(gpus, entry);
    // Why stop: CUDA itself ignores everything after the first entry it cannot resolve.
    if (gpu === undefined) {
      warnings.push(`CUDA_VISIBLE_DEVICES entry "${entry}" matches no GPU; CUDA ignores it and every entry after it`);
      break;
    }
    // A MIG entry is a new object each time: a repeated one is the same device, known by its UUID.
    if (!selected.some((s) => s === gpu || (s.uuid !== '' && s.uuid === gpu.uuid))) selected.push(gpu);
  }
  return { gpus: selected, cudaVisibleDevices, warnings };
}

function matchEntry(gpus: readonly Gpu[], entry: string): Gpu | undefined {
  if (/^\d+$/.test(entry)) return gpus.find((g) => g.index === Number(entry));
  const lower = entry.toLowerCase();
  if (lower.startsWith('gpu-') || lower.startsWith('mig-')) {
    // CUDA accepts any unique prefix of a UUID; MIG instances are not listed by --query-gpu, so one counts as
    // one device of unknown index and memory.
    const matches = gpus.filter((g) => g.uuid.toLowerCase().startsWith(lower));
    if (matches.length === 1) return matches[0];
    if (lower.startsWith('mig-')) return { index: -1, uuid: entry, name: 'MIG instance', memoryMiB: null };
  }
  return undefined;
}
