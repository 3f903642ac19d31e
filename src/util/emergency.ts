// Last-resort cleanups run by the one exit point when llmserve dies of an uncaught error.

const cleanups = new Set<() => void>();

/** Registers a synchronous cleanup (kill process groups, mark probe files); returns its unregister function. */
export function onEmergency(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Runs every registered cleanup, each guarded so one failure cannot skip the others. */
export function runEmergencyCleanups(): void {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // Keep going: the remaining cleanups matter more than this one's error.
    }
  }
  cleanups.clear();
}
