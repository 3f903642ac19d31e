// Apply CUDA_VISIBLE_DEVICES to the GPUs nvidia-smi reports, reading it as CUDA does.
import type { Gpu, GpuSelection } from './types.js';

/**
 * Selects the GPUs that CUDA_VISIBLE_DEVICES leaves visible (indices or GPU-/MIG- UUIDs; "", -1, none = none).
 *
 * Why these rules: vLLM counts its GPUs through PyTorch, whose `_parse_visible_devices` (torch/cuda/__init__.py)
 * mirrors CUDA's own reading of the variable. The first entry decides the kind: a list that starts with `GPU-` or
 * `MIG-` is read as UUIDs, any other as indices (the leading digits of each entry, as strtoul reads them: `1gpu2` is
 * 1). The list stops at the first entry that is not of that kind or matches no GPU; and a GPU named twice leaves
 * none visible at all, so a vLLM given `0,0,1` finds no GPU.
 */
export function selectVisible(gpus: readonly Gpu[], cudaVisibleDevices: string | undefined): GpuSelection {
  if (cudaVisibleDevices === undefined) return { gpus: [...gpus], cudaVisibleDevices: null, warnings: [] };
  const value = cudaVisibleDevices.trim();
  if (value === '' || value === '-1' || value.toLowerCase() === 'none' || value.toLowerCase() === 'nodevfiles') {
    return { gpus: [], cudaVisibleDevices, warnings: [] };
  }
  const entries = value.split(',').map((e) => e.trim());
  const kind = uuidKind(entries[0]!);
  const selected: Gpu[] = [];
  const warnings: string[] = [];
  for (const entry of entries) {
    const found = kind === null ? byIndex(gpus, entry) : byUuid(gpus, entry, kind);
    if (typeof found === 'string') {
      warnings.push(`CUDA_VISIBLE_DEVICES entry "${entry}" ${found}; CUDA ignores it and every entry after it`);
      break;
    }
    if (found.readAs !== null) warnings.push(`CUDA_VISIBLE_DEVICES entry "${entry}" is read as GPU ${found.readAs}: CUDA takes only its leading digits`);
    const gpu = found.gpu;
    // A MIG entry is a new object each time: a repeated one is the same device, known by its UUID.
    if (selected.some((s) => s === gpu || (s.uuid !== '' && s.uuid === gpu.uuid))) {
      const named = gpu.index >= 0 ? `GPU ${gpu.index}` : gpu.uuid;
      warnings.push(`CUDA_VISIBLE_DEVICES=${value} names ${named} twice, and CUDA then makes no GPU visible at all: list each GPU once`);
      return { gpus: [], cudaVisibleDevices, warnings };
    }
    selected.push(gpu);
  }
  return { gpus: selected, cudaVisibleDevices, warnings };
}

type Found = { gpu: Gpu; readAs: number | null } | string;

/** `GPU-` or `MIG-` when the entry is a UUID (any case, as nvidia-smi's output is copied), else null. */
function uuidKind(entry: string): 'gpu-' | 'mig-' | null {
  const lower = entry.toLowerCase();
  return lower.startsWith('gpu-') ? 'gpu-' : lower.startsWith('mig-') ? 'mig-' : null;
}

/** An index entry: its leading digits (strtoul), the GPU nvidia-smi numbers so, or why it selects none. */
function byIndex(gpus: readonly Gpu[], entry: string): Found {
  const digits = /^\+?(\d+)/.exec(entry);
  if (digits === null) return uuidKind(entry) === null ? 'is not a GPU index' : 'is a UUID in a list of indices';
  const index = Number(digits[1]);
  const gpu = gpus.find((g) => g.index === index);
  if (gpu === undefined) return 'matches no GPU';
  return { gpu, readAs: digits[0] === entry ? null : index };
}

/** A UUID entry: the one GPU whose UUID it begins (CUDA accepts any unique prefix), or why it selects none. */
function byUuid(gpus: readonly Gpu[], entry: string, kind: 'gpu-' | 'mig-'): Found {
  const lower = entry.toLowerCase();
  if (!lower.startsWith(kind)) return `is not a ${kind.toUpperCase()} UUID like the list's first entry`;
  const matches = gpus.filter((g) => g.uuid.toLowerCase().startsWith(lower));
  if (matches.length === 1) return { gpu: matches[0]!, readAs: null };
  if (matches.length > 1) return `begins the UUIDs of ${matches.length} GPUs`;
  // MIG instances are not listed by --query-gpu, so one counts as one device of unknown index and memory.
  if (kind === 'mig-') return { gpu: { index: -1, uuid: entry, name: 'MIG instance', memoryMiB: null }, readAs: null };
  return 'matches no GPU';
}
