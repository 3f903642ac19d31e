// The level of one vLLM output line, read from the line itself: vLLM logs every level to stdout and draws its
// progress bars on stderr, so the stream alone says nothing about severity.
import type { LogLevel } from '../log.js';

/**
 * vLLM's (Python logging's) level names, after the `(APIServer pid=N)` prefix, or the two of a line a Ray worker's
 * vLLM sends through its engine (`(EngineCore_DP0 pid=479) (RayWorkerWrapper pid=571) ERROR ...`); uvicorn's `INFO:` too.
 */
const levelToken = /^(?:\([^)]*\)\s+){0,3}(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b/;
/** A tqdm frame: `50% Completed | 1/2` (safetensors shards) or `40%|████      | 27/67` (CUDA graphs). */
const progressFrame = /\d+%(?:\s+Completed\s*)?\|/;

/** Level of a vLLM line: its own level name, `info` for a progress frame, else by stream (stderr: `warn`). */
export function vllmLineLevel(line: string, stream: 'stdout' | 'stderr'): LogLevel {
  const token = levelToken.exec(line)?.[1];
  if (token === 'DEBUG') return 'debug';
  if (token === 'INFO') return 'info';
  if (token === 'WARNING' || token === 'WARN') return 'warn';
  if (token === 'ERROR' || token === 'CRITICAL') return 'error';
  if (progressFrame.test(line)) return 'info';
  return stream === 'stderr' ? 'warn' : 'info';
}
