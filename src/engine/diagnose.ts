// Turn vLLM's last log lines into a one-line diagnosis when the failure is a known one.

/** The largest divisor of `n` not above `limit` (at least 1). */
function largestDivisorUpTo(n: number, limit: number): number {
  for (let d = Math.min(n, limit); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

const rules: { pattern: RegExp; diagnosis: (m: RegExpMatchArray) => string }[] = [
  {
    pattern: /unrecognized arguments: (.+)$/m,
    diagnosis: (m) => `vLLM rejected unknown arguments: ${m[1]}. Check vllm.args / the args after "--" against "vllm serve --help" of the installed version.`,
  },
  {
    pattern: /Total number of attention heads \((\d+)\) must be divisible by tensor parallel size \((\d+)\)/,
    // Why not "use auto" alone: auto could not fit a model whose heads it could not read (a hub id), which is how it
    // usually got here; a divisor is named.
    diagnosis: (m) => `the model's ${m[1]} attention heads are not divisible by tensor-parallel size ${m[2]}: set --tensor-parallel-size to a divisor of ${m[1]}, such as ${largestDivisorUpTo(Number(m[1]), Number(m[2]))} (auto fits it by itself when it can read the model's config.json: a local path, not a hub id).`,
  },
  {
    // The key-value heads of grouped-query attention (QKVParallelLinear: divide(kv, tp), or divide(tp, kv) when tp is
    // larger), which vLLM checks only as it builds the model, after the attention heads passed.
    pattern: /AssertionError: (\d+) is not divisible by (\d+)/,
    diagnosis: (m) => `a model dimension (${m[1]}) does not split by ${m[2]}: usually the model's key-value heads against the tensor-parallel size; use --tensor-parallel-size auto, or a size that both its attention heads and its key-value heads split over (llmserve probe shows them).`,
  },
  {
    // vLLM's most common memory failure: the weights fit, the KV cache for one max-length request does not
    // (vllm/v1/core/kv_cache_utils.py). Before the generic rule: its advice is the max length, not the GPUs.
    pattern: /max seq len \((\d+)\)[^\n]*larger than the available KV cache memory(?:[^\n]*estimated maximum model length is (\d+))?/,
    diagnosis: (m) =>
      `out of GPU memory for the KV cache: one request of the model's max length (${m[1]} tokens) does not fit. Set a smaller --max-model-len in vllm.args${m[2] ? ` (vLLM estimates ${m[2]} fits)` : ''}, raise --gpu-memory-utilization, or use more GPUs.`,
  },
  {
    pattern: /(CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks|insufficient GPU memory)/i,
    diagnosis: () => 'out of GPU memory: lower --max-model-len or --gpu-memory-utilization in vllm.args, use more GPUs, or check that no other process holds GPU memory (nvidia-smi).',
  },
  {
    pattern: /(address already in use|Errno 98)/i,
    diagnosis: () => 'the backend port is already in use: choose another with --backend-port, or stop what holds it.',
  },
  {
    pattern: /(does not appear to have a file named config\.json|Repository Not Found|is not a local folder and is not a valid model identifier|No such file or directory.*(config|model)|does not exist)/i,
    diagnosis: () => 'model not found: check the model path (it must be a directory with config.json) or the hub id, and HF_TOKEN for gated models.',
  },
];

/** Returns a one-line diagnosis of a failed vLLM start, or null when the cause is not recognisable. */
export function diagnose(lines: readonly string[]): string | null {
  const text = lines.join('\n');
  for (const rule of rules) {
    const m = text.match(rule.pattern);
    if (m) return rule.diagnosis(m);
  }
  return null;
}

/** Flags that old scripts pass and current vLLM removed, whose intent is now the default: dropped with a warning. */
export const REMOVED_FLAGS_NOW_DEFAULT = ['--disable-log-requests'];

/** Finds which of `droppable` (by default the removed-but-harmless flags) vLLM rejected, from its "unrecognized arguments" line. */
export function rejectedRemovedFlags(lines: readonly string[], droppable: readonly string[] = REMOVED_FLAGS_NOW_DEFAULT): string[] {
  const m = lines.join('\n').match(/unrecognized arguments: (.+)$/m);
  if (!m?.[1]) return [];
  const rejected = m[1].trim().split(/\s+/).map((a) => a.split('=')[0]!.replace(/_/g, '-'));
  return droppable.filter((f) => rejected.includes(f));
}

/** Removes the given flags (and `--flag=value` / underscore spellings) from an argument list. */
export function withoutFlags(args: readonly string[], flags: readonly string[]): string[] {
  return args.filter((a) => !flags.includes(a.split('=')[0]!.replace(/_/g, '-')));
}
