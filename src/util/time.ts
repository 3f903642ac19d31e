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
  // Whole seconds first: 179.6 s is 3 min 0 s, not 2 min 60 s.
  const whole = Math.round(seconds);
  const m = Math.floor(whole / 60);
  return `${m} min ${whole - m * 60} s`;
}

/**
 * Settles as `work` settles, or with the name of the first of `events` to abort before that; the abort listeners are
 * removed as soon as it is decided. `work` must be short-lived (a timer, one request): it is the one input that keeps
 * a reaction. Why not Promise.race with the long-lived inputs themselves (the stop request, a running child's exit):
 * each race leaves a reaction on every input still pending, and that reaction keeps the race and its value alive until
 * the input settles; raced at every health check, that grew the supervisor's heap by about 2 KB a tick for as long as
 * it ran.
 */
export function raceAbort<T, K extends string>(work: Promise<T>, events: Partial<Record<K, AbortSignal>>): Promise<T | K> {
  return new Promise<T | K>((resolve, reject) => {
    const subscribed: [AbortSignal, () => void][] = [];
    let decided = false;
    const decide = (settle: () => void) => {
      if (decided) return;
      decided = true;
      for (const [signal, listener] of subscribed) signal.removeEventListener('abort', listener);
      subscribed.length = 0;
      settle();
    };
    // Handled first and always, so that a rejection after an event decided the race is never unhandled.
    work.then(
      (value) => decide(() => resolve(value)),
      (err: unknown) => decide(() => reject(err)),
    );
    for (const name of Object.keys(events) as K[]) {
      const signal = events[name];
      if (signal === undefined) continue;
      if (signal.aborted) return decide(() => resolve(name));
      const listener = () => decide(() => resolve(name));
      signal.addEventListener('abort', listener, { once: true });
      subscribed.push([signal, listener]);
    }
  });
}
