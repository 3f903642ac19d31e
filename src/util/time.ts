// Timers that can be cancelled, so no wait outlives the reason for it.

/** The longest delay a Node timer keeps (2^31-1 ms); a longer one fires after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    // Why the bound: settings stop at 2147483 s, but a wait can add a margin to one (the drain waits drain.timeout
    // + 1 s), and an overflowing timer would end that wait at once: a waited ~24.8 days is the same as asked for.
    const timer = setTimeout(done, Math.min(ms, MAX_TIMER_MS));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Formats seconds for humans: 0.4 s, 12 s, 3 min 5 s. */
export function formatSeconds(seconds: number): string {
  if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}
