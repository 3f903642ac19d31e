// The terminal or pipe llmserve writes to can go away under it: a closed terminal makes writes fail with EIO, a
// closed pipe (`llmserve start | head`) with EPIPE. Node reports that as an 'error' event on process.stdout or
// process.stderr, and without a listener it would be an uncaught exception: an abrupt death, no drain.

type Listener = (code: string) => void;

const listeners = new Set<Listener>();
let closedWith: string | null = null;

/**
 * Keeps a failed stdout or stderr from crashing llmserve (what is written after is dropped; a --log-file still gets
 * every line) and tells the subscribers of onOutputClosed, once. Called once, by the exit point.
 */
export function guardOutput(streams: readonly NodeJS.EventEmitter[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (closedWith !== null) return;
      closedWith = err.code ?? err.message;
      for (const listener of listeners) listener(closedWith);
    });
  }
}

/** Calls `listener` with the error code (EIO, EPIPE) when the output fails, at once if it already has; returns its unregister function. */
export function onOutputClosed(listener: Listener): () => void {
  if (closedWith !== null) listener(closedWith);
  listeners.add(listener);
  return () => listeners.delete(listener);
}
