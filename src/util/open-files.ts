// The open-file limit (`ulimit -n`) the proxy and vLLM inherit: a low one caps concurrent connections silently.
import { readFileSync } from 'node:fs';

/** Below this many descriptors a warning at start: the proxy spends two per request in flight (client, vLLM). */
export const LOW_OPEN_FILE_LIMIT = 4096;

/** The soft "Max open files" limit in a /proc/PID/limits text; null when absent, unlimited or unreadable. */
export function openFileLimit(limitsText: string): number | null {
  const line = /^Max open files\s+(\S+)/m.exec(limitsText);
  if (line === null || !/^\d+$/.test(line[1]!)) return null;
  return Number(line[1]);
}

/**
 * The warning for a low open-file limit, or null. Why said: out of descriptors, the kernel hands the proxy new
 * connections that libuv resets at once, which shows only as failed health checks (ECONNRESET), never as its cause.
 */
export function lowOpenFileLimitWarning(limit: number | null): string | null {
  if (limit === null || limit >= LOW_OPEN_FILE_LIMIT) return null;
  // Less about 20 the proxy holds whatever the traffic: its listening sockets, IPC and log pipes, the usage store.
  return `the open-file limit is ${limit} (ulimit -n): the proxy holds two descriptors per request in flight (the client's and vLLM's), so it can carry about ${Math.floor(limit / 2) - 20} at once, and connections beyond that are reset; raise it (ulimit -n 65536, or the container runtime's nofile limit, e.g. docker run --ulimit nofile=65536:65536)`;
}

/** This process's own limit, as its children (the proxy, vLLM) inherit it; null where /proc is not there. */
export function ownOpenFileLimit(read: (file: string) => string = (file) => readFileSync(file, 'utf8')): number | null {
  try {
    return openFileLimit(read('/proc/self/limits'));
  } catch {
    return null;
  }
}
