// How long the proxy keeps an idle connection to vLLM: always shorter than vLLM's own keep-alive, so that the pool
// closes a connection first and never hands out one that vLLM is closing.

/** vLLM's keep-alive (uvicorn's timeout_keep_alive) when VLLM_HTTP_TIMEOUT_KEEP_ALIVE is unset, seconds. */
export const VLLM_DEFAULT_KEEP_ALIVE_S = 5;

/** The pool's idle time with vLLM's default keep-alive, ms: what it has always been. */
export const DEFAULT_UPSTREAM_IDLE_MS = 4000;

/**
 * The pool's idle time for backends whose vLLM environments set VLLM_HTTP_TIMEOUT_KEEP_ALIVE to these values (one per
 * model; undefined = unset): 80 % of the shortest keep-alive, at most 4 s; 0 (no reuse) when one is 0 or less.
 */
export function upstreamIdleMs(keepAliveValues: readonly (string | undefined)[]): number {
  let shortest = VLLM_DEFAULT_KEEP_ALIVE_S;
  for (const value of keepAliveValues) shortest = Math.min(shortest, keepAliveSeconds(value));
  // Why 80 %: uvicorn starts its timer when it has sent the response, the pool when it has read it, later under load;
  // the margin covers that lag (200 ms at 1 s), and 5 s gives the 4 s the pool has always used.
  return shortest <= 0 ? 0 : Math.min(DEFAULT_UPSTREAM_IDLE_MS, Math.floor(shortest * 800));
}

/**
 * A value as vLLM reads it (envs.py: Python's int(), so surrounding blanks, a sign and `_` between digits pass); one
 * that int() refuses stops vLLM at its start, and counts here as the default.
 */
function keepAliveSeconds(value: string | undefined): number {
  if (value === undefined) return VLLM_DEFAULT_KEEP_ALIVE_S;
  const text = value.trim();
  if (!/^[+-]?\d+(?:_\d+)*$/.test(text)) return VLLM_DEFAULT_KEEP_ALIVE_S;
  return Number(text.replace(/_/g, ''));
}
