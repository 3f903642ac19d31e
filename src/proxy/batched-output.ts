// Access-log lines batched into one write: a socket or pipe write costs more than the request it logs.

/** A stream-like sink that only needs `write`. */
export interface Sink {
  write(chunk: string): unknown;
}

/** Buffered stdout plus an stderr that flushes it first (so the order of lines is kept), and a final flush. */
export interface BatchedOutput {
  stdout: Sink;
  stderr: Sink;
  flush(): void;
}

/**
 * Collects what is written to `out` and writes it in one piece after `delayMs`, or at once past `maxBytes`.
 * The timer is unref'd: a pending batch never keeps the process alive; call flush() before exiting.
 */
export function batchedOutput(out: Sink, err: Sink, delayMs = 20, maxBytes = 64 * 1024): BatchedOutput {
  let pending = '';
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (pending.length === 0) return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  return {
    stdout: {
      write(chunk) {
        pending += chunk;
        if (pending.length >= maxBytes) flush();
        else if (timer === null) (timer = setTimeout(flush, delayMs)).unref();
        return true;
      },
    },
    stderr: {
      write(chunk) {
        flush();
        return err.write(chunk);
      },
    },
    flush,
  };
}
