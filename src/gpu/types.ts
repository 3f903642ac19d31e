// What llmserve knows about one GPU.

/** One GPU as nvidia-smi reports it (index as nvidia-smi numbers it). */
export interface Gpu {
  index: number;
  uuid: string;
  name: string;
  /** Total memory in MiB; null when nvidia-smi printed [N/A] (MIG, some drivers). */
  memoryMiB: number | null;
}

/** The outcome of looking for GPUs, before CUDA_VISIBLE_DEVICES is applied. */
export interface GpuInventory {
  /** Which source answered. */
  source: 'nvidia-smi' | 'systeminformation' | 'none';
  gpus: Gpu[];
  /** Lines of tool output that could not be parsed (reported, never fatal on their own). */
  unparsed: string[];
  /** Raw output, kept for error messages. */
  raw: string;
}

/** The GPUs llmserve will use, after CUDA_VISIBLE_DEVICES. */
export interface GpuSelection {
  gpus: Gpu[];
  /** The CUDA_VISIBLE_DEVICES value applied, or null when unset. */
  cudaVisibleDevices: string | null;
  /** Notes about entries that matched nothing. */
  warnings: string[];
}
