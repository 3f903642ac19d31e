// The engine-stall watchdog (`engine_stall_timeout`): requests wait on vLLM while it sends nothing and its engine's
// figures stand still. Why: a deadlocked EngineCore (a stuck CUDA or NCCL call, vLLM issue #39863) sits behind an API
// server that still answers /health and /v1/models, so the health checks pass while every request hangs.

/**
 * vLLM's series that move whenever its engine steps with work: the token counters (decode, and a finished prefill),
 * the queue, the KV cache (each chunk of a long prefill takes blocks). The engine publishes them each step it runs; a
 * hung engine runs none, so they freeze. `gpu_cache_usage_perc` is the older name of `kv_cache_usage_perc`.
 */
const ENGINE_SERIES = [
  'vllm:generation_tokens_total',
  'vllm:prompt_tokens_total',
  'vllm:num_requests_running',
  'vllm:num_requests_waiting',
  'vllm:kv_cache_usage_perc',
  'vllm:gpu_cache_usage_perc',
  'vllm:num_preemptions_total',
] as const;
const TOKEN_COUNTERS = ['vllm:generation_tokens_total', 'vllm:prompt_tokens_total'];

/**
 * The engine's figures in vLLM's /metrics page, as one comparable string (each series summed over its labels: several
 * engines with data parallelism); null when the page has no token counter (vLLM with --disable-log-stats, or not
 * vLLM), since then nothing here could tell a working engine from a stuck one. A line cut off at the end is ignored.
 */
export function engineFigures(page: string): string | null {
  const sums = new Map<string, number>();
  const lines = page.split('\n');
  if (!page.endsWith('\n')) lines.pop();
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!(ENGINE_SERIES as readonly string[]).includes(name)) continue;
    // The value follows the labels (whose values may hold spaces) or the name; a timestamp may follow it.
    const rest = line[nameEnd] === '{' ? line.slice(line.lastIndexOf('}') + 1) : line.slice(nameEnd);
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  if (!TOKEN_COUNTERS.some((n) => sums.has(n))) return null;
  return ENGINE_SERIES.filter((n) => sums.has(n)).map((n) => `${n}=${sums.get(n)}`).join(' ');
}

/** One look at a backend, taken at a passing health check. */
export interface StallSample {
  /** Monotonic ms. */
  now: number;
  /** Exchanges waiting on vLLM alone (the proxy's count, every worker); null when the proxy did not say. */
  waiting: number | null;
  /** Ms since any of those exchanges last got bytes from vLLM; null: none has, or not known. */
  sinceBytesMs: number | null;
  /** engineFigures() of vLLM's /metrics now; null when they could not be read or hold no token counter. */
  figures: string | null;
}

/**
 * Decides, sample by sample, whether vLLM's engine stalled: requests have been waiting on it for `timeoutMs` with no
 * sign of progress (no byte on any of them, no change in its figures). A wrong verdict restarts a healthy vLLM, so
 * only evidence adds up to one: a verdict needs figures read at this sample and equal to the last ones read (the token
 * counters only grow, so equal means no token in between, however many reads failed meanwhile); a sample whose figures
 * could not be read (a /metrics that timed out under load) gives none and leaves the count as it was, instead of
 * starting it again at every slow read; never read (no token counters at all), no verdict ever; a proxy that did not
 * say what waits starts the count again.
 */
export class EngineStallWatch {
  /** When the present spell of waiting without progress began; null while nothing waits. */
  private quietSince: number | null = null;
  private figures: string | null = null;
  private sampledAt: number | null = null;

  constructor(private readonly timeoutMs: number) {}

  /** Forgets everything (a new vLLM). */
  reset(): void {
    this.quietSince = null;
    this.figures = null;
    this.sampledAt = null;
  }

  /** Ms without progress while requests waited, when that reached the timeout with this sample; else null. */
  sample(s: StallSample): number | null {
    const previous = this.sampledAt;
    const figures = this.figures;
    this.sampledAt = s.now;
    if (s.figures !== null) this.figures = s.figures;
    if (s.waiting === null || s.waiting === 0) {
      this.quietSince = null;
      return null;
    }
    // Bytes since the sample before (the proxy's figure is good to a second), or figures that moved since last read.
    const bytes = s.sinceBytesMs !== null && previous !== null && s.sinceBytesMs <= s.now - previous + 1000;
    const moved = s.figures !== null && s.figures !== figures;
    // The first sample that finds requests waiting starts the spell: the timeout counts from a time they were seen.
    if (this.quietSince === null || bytes || moved) {
      this.quietSince = s.now;
      return null;
    }
    if (s.figures === null || figures === null) return null;
    const quietMs = s.now - this.quietSince;
    return quietMs >= this.timeoutMs ? quietMs : null;
  }

  /** Ms since the present spell of waiting without progress began; null when there is none. */
  quietFor(now: number): number | null {
    return this.quietSince === null ? null : now - this.quietSince;
  }
}
