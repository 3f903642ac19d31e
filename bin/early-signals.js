// Records a SIGTERM or SIGINT that arrives while `start` is still loading its modules, for start to act on.
'use strict';

/** The property of the process object where the record is kept (start's catchStartupSignals takes it over). */
const EARLY_SIGNALS = Symbol.for('llmserve.earlySignals');

/**
 * Installs handlers that only record the first SIGTERM/SIGINT (and ignore SIGHUP) until start's own take over. Why:
 * run as PID 1 (a container without an init), the kernel drops a signal that has no handler, and loading start's
 * modules takes a few hundred ms; a SIGTERM then was lost, and the pod went on loading vLLM onto the GPUs until the
 * platform's SIGKILL. Not PID 1, Node's default ended the process by the signal (exit 143, no probe files).
 */
function recordEarlySignals(proc) {
  const record = { received: null, handlers: {} };
  for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    record.handlers[name] = () => {
      if (name !== 'SIGHUP' && record.received === null) record.received = name;
    };
    proc.on(name, record.handlers[name]);
  }
  proc[EARLY_SIGNALS] = record;
}

module.exports = { recordEarlySignals, EARLY_SIGNALS };
