// Polling with deadlines: tests wait for observable states, never for fixed sleeps.
import fs from 'node:fs';

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** What was awaited; a function is called at the deadline (to show output gathered meanwhile). */
  message?: string | (() => string);
}

/** Polls `fn` until it returns a truthy value (returned), or throws `message` at the deadline. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  let lastChance = false;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      // One more look after pending I/O: a loaded machine may have stalled this process past the deadline with the
      // awaited event already read off a socket or pipe but not yet handled (timers run before I/O is polled).
      if (!lastChance) {
        lastChance = true;
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const message = typeof opts.message === 'function' ? opts.message() : opts.message;
      throw new Error(`timed out after ${opts.timeoutMs} ms: ${message ?? 'condition not met'}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/** Waits until `path` exists (or, with exists=false, until it is gone). */
export async function waitForFile(path: string, exists: boolean, timeoutMs: number): Promise<void> {
  await waitFor(() => fs.existsSync(path) === exists, { timeoutMs, message: `${path} ${exists ? 'to exist' : 'to be gone'}` });
}

/** Rejects with `message` if `promise` has not settled within timeoutMs. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${message}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
