// Recognise vLLM's start-up phases from its log lines (reference/VLLM.md, "Start-up").

/** One recognised phase; `fraction` when vLLM printed a progress figure. */
export interface StartupPhase {
  /** Stable identifier, in start-up order. */
  id: 'loading-weights' | 'weights-loaded' | 'model-loaded' | 'kv-cache' | 'cuda-graphs' | 'engine-ready' | 'server-starting' | 'server-started';
  label: string;
  fraction?: number;
}

const rules: { pattern: RegExp; phase: (m: RegExpMatchArray) => StartupPhase }[] = [
  {
    pattern: /Loading safetensors checkpoint shards:\s*(\d+)%[^|]*\|\s*(\d+)\/(\d+)/,
    phase: (m) => ({ id: 'loading-weights', label: `loading weights (shard ${m[2]}/${m[3]})`, fraction: Number(m[1]) / 100 }),
  },
  { pattern: /Loading weights took ([\d.]+) seconds/, phase: (m) => ({ id: 'weights-loaded', label: `weights loaded in ${m[1]} s` }) },
  { pattern: /Model loading took ([\d.]+) GiB memory/, phase: (m) => ({ id: 'model-loaded', label: `model loaded (${m[1]} GiB)` }) },
  { pattern: /Available KV cache memory: ([\d.]+) GiB/, phase: (m) => ({ id: 'kv-cache', label: `KV cache ${m[1]} GiB` }) },
  {
    pattern: /Capturing CUDA graphs?[^:]*(?::\s*(\d+)%)?/,
    phase: (m) => ({ id: 'cuda-graphs', label: 'capturing CUDA graphs', ...(m[1] ? { fraction: Number(m[1]) / 100 } : {}) }),
  },
  { pattern: /init engine \(profile, create kv cache, warmup model\) took ([\d.]+) seconds/, phase: (m) => ({ id: 'engine-ready', label: `engine ready (init ${m[1]} s)` }) },
  { pattern: /Starting vLLM server on (\S+)/, phase: () => ({ id: 'server-starting', label: 'starting the API server' }) },
  { pattern: /Application startup complete/, phase: () => ({ id: 'server-started', label: 'API server started' }) },
];

/** Returns the phase a vLLM log line announces, or null. */
export function phaseOf(line: string): StartupPhase | null {
  for (const rule of rules) {
    const m = line.match(rule.pattern);
    if (m) return rule.phase(m);
  }
  return null;
}
