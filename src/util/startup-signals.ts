// Signals that arrive while `start` is still planning (GPU discovery, port checks), before the supervisor exists.

/** What a signal during start-up left behind: its name, and an AbortSignal for the external programs in flight. */
export interface StartupSignals {
  /** 'SIGTERM' or 'SIGINT' once one arrived, else null. */
  readonly received: string | null;
  /** Aborted by that signal: the start-up's external programs (nvidia-smi, `vllm --version`) are stopped with it. */
  readonly abort: AbortSignal;
  /** Resolves `graceMs` after a signal arrives (never before one): how long start-up waits for what is in flight. */
  settled(graceMs: number): Promise<void>;
  /** Removes the handlers (call once the supervisor's own are installed, with no await in between). */
  dispose(): void;
}

/** Where bin/early-signals.js keeps a signal that came while start's modules loaded (a symbol of the process object). */
const EARLY_SIGNALS = Symbol.for('llmserve.earlySignals');

interface EarlySignalRecord {
  received: string | null;
  handlers: Record<string, () => void>;
}

/** Removes bin/early-signals.js's handlers, once ours are installed, and returns the signal they recorded, if any. */
function takeEarlySignal(proc: NodeJS.Process): string | null {
  const holder = proc as unknown as Record<symbol, EarlySignalRecord | undefined>;
  const record = holder[EARLY_SIGNALS];
  if (record === undefined) return null;
  delete holder[EARLY_SIGNALS];
  for (const [name, handler] of Object.entries(record.handlers)) proc.off(name, handler);
  return record.received;
}

/**
 * Handles SIGTERM, SIGINT and SIGHUP from the moment `not-ready` exists until the supervisor takes over.
 * Why: without a listener Node's default action ends the process by the signal (exit 143), with `not-ready` alone
 * and no `not-healthy`, and a nvidia-smi query possibly still running. A platform that stops a pod during a slow
 * GPU query must get the same clean exit 0, both probe files present, as later on. SIGHUP (a key reload later on)
 * only calls `onHangup` here (the log file's reopening, for logrotate): the keys are read when the proxy starts.
 */
export function catchStartupSignals(proc: NodeJS.Process, onSignal: (name: string) => void, onHangup: () => void = () => {}): StartupSignals {
  const controller = new AbortController();
  let received: string | null = null;
  const stop = (name: string) => () => {
    if (received !== null) return;
    received = name;
    onSignal(name);
    controller.abort(new Error(`${name} received`));
  };
  const onTerm = stop('SIGTERM');
  const onInt = stop('SIGINT');
  const onHup = () => onHangup();
  proc.on('SIGTERM', onTerm);
  proc.on('SIGINT', onInt);
  proc.on('SIGHUP', onHup);
  const handed = takeEarlySignal(proc);
  if (handed !== null) stop(handed)();
  return {
    get received() {
      return received;
    },
    abort: controller.signal,
    settled(graceMs) {
      return new Promise((resolve) => {
        const later = () => void setTimeout(resolve, graceMs);
        if (controller.signal.aborted) later();
        else controller.signal.addEventListener('abort', later, { once: true });
      });
    },
    dispose() {
      proc.off('SIGTERM', onTerm);
      proc.off('SIGINT', onInt);
      proc.off('SIGHUP', onHup);
    },
  };
}
