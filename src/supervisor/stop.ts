// Stopping a child: SIGTERM to the leader, wait, SIGKILL the whole group, then make sure the group is empty.
import { liveGroupMembers, type ManagedChild } from './child.js';
import { sleep } from '../util/time.js';
import type { Logger } from '../log.js';

/**
 * How a stop went: `graceful` when the leader exited within the grace period, `killed` when the grace period ran
 * out, `killed-at-once` when a second signal cut it short.
 */
export type StopOutcome = 'graceful' | 'killed' | 'killed-at-once' | 'already-exited';

/** Stops a child and everything in its process group; `killNow` aborts the grace period (second signal). */
export async function stopChild(child: ManagedChild, graceMs: number, killNow?: AbortSignal): Promise<StopOutcome> {
  let outcome: StopOutcome = 'already-exited';
  if (!child.hasExited) {
    // SIGTERM to the leader only: vLLM's API server then shuts EngineCore and the workers down in order.
    if (!killNow?.aborted) child.signal('SIGTERM');
    const grace = new AbortController();
    const onKill = () => grace.abort();
    killNow?.addEventListener('abort', onKill, { once: true });
    // Already aborted (the second signal came during the drain): an abort listener would never fire; no grace.
    if (killNow?.aborted === true) grace.abort();
    const exitedInTime = await Promise.race([child.exited.then(() => true), sleep(graceMs, grace.signal).then(() => false)]);
    killNow?.removeEventListener('abort', onKill);
    grace.abort();
    outcome = exitedInTime ? 'graceful' : killNow?.aborted === true ? 'killed-at-once' : 'killed';
  }
  await emptyGroup(child);
  return outcome;
}

/** SIGKILLs whatever is left in the child's group (orphaned EngineCore/workers) and waits until none is alive. */
export async function emptyGroup(child: ManagedChild, timeoutMs = 5000): Promise<number[]> {
  const pgid = child.pid;
  // Why always: when vLLM's API server dies (or is SIGKILLed) its EngineCore and workers live on holding GPU
  // memory; they are still in the group, so -pgid reaches them even though their parent is gone.
  child.signalGroup('SIGKILL');
  await child.exited;
  // Monotonic: a wall clock stepped back meanwhile would stretch this give-up (and the restart or stop behind it).
  const deadline = performance.now() + timeoutMs;
  let left = liveGroupMembers(pgid);
  while (left.length > 0 && performance.now() < deadline) {
    child.signalGroup('SIGKILL');
    await sleep(10);
    left = liveGroupMembers(pgid);
  }
  return left;
}

/** What has asked a stop under way: whether a signal has yet (the first stop may have been the output closing). */
export interface StopAsks {
  signalled: boolean;
}

/**
 * A stop asked for while one is under way: only a second signal is the operator's "kill now" (aborts `kill`). The
 * output closing (a `| tee` killed by the same Ctrl-C or container stop) is not: it must not cut the drain short,
 * before or after the signal. Nor is the first signal after the output closed: the platform's SIGTERM, which must
 * drain as any first SIGTERM does.
 */
export function repeatedStop(reason: string, logger: Pick<Logger, 'info' | 'warn'>, kill: AbortController, asks: StopAsks): void {
  if (!isSignal(reason)) return void logger.info(`${reason}: already stopping`);
  if (!asks.signalled) {
    asks.signalled = true;
    return void logger.info(`${reason} received: already stopping (send it again to kill at once)`);
  }
  logger.warn(`${reason} again: killing everything now`);
  kill.abort();
}

/** Whether a stop reason is a signal's name (SIGTERM), which can be sent again, rather than an event. */
export function isSignal(reason: string): boolean {
  return /^SIG[A-Z]+$/.test(reason);
}
