// `llmserve proxy`: the internal subcommand the supervisor spawns; settings arrive over IPC, never on argv.
import { ExitCode, LlmserveError, usageError } from '../errors.js';
import { createLogger } from '../log.js';
import { batchedOutput } from '../proxy/batched-output.js';
import { createProxy, type ProxyHandle } from '../proxy/server.js';
import { isBackendState, type ChildMessage, type ParentMessage, type ProxySettings } from '../proxy/settings.js';

/**
 * Runs the proxy child: waits for `start`, serves until the IPC channel closes or SIGTERM, then resolves (exit 0).
 * When it cannot listen it sends `fatal` and rejects with an error whose exitCode is 2.
 */
export async function runProxyCommand(): Promise<void> {
  if (typeof process.send !== 'function') {
    throw usageError('`llmserve proxy` is internal: `llmserve start` runs it with an IPC channel');
  }
  // Signals are handled from the first instant: the parent may signal right after `listening`.
  const stop = stopSignal();
  // One write per batch of access-log lines instead of one per request (a pipe write is a syscall each).
  const output = batchedOutput(process.stdout, process.stderr);
  try {
    let proxy: ProxyHandle;
    try {
      const settings = await Promise.race([waitForStart(), stop.promise.then(() => null)]);
      if (settings === null) return; // stopped or orphaned before the start message
      const logger = createLogger({ source: 'proxy', format: settings.logFormat, color: settings.color, stdout: output.stdout, stderr: output.stderr });
      proxy = await createProxy(settings, { logger });
    } catch (err) {
      const code = err instanceof LlmserveError ? err.code : 'RUNTIME';
      const message = (err as Error).message;
      await send({ type: 'fatal', code, message });
      // The contract says exit 2 whatever the cause; main.ts exits with this error's code.
      throw new LlmserveError(code, message, { exitCode: ExitCode.usage, cause: err });
    }
    const onMessage = (msg: unknown) => handleMessage(proxy, msg);
    process.on('message', onMessage);
    await send({ type: 'listening', port: proxy.port });
    await stop.promise;
    process.off('message', onMessage);
    await proxy.close();
  } finally {
    output.flush();
    stop.dispose();
    if (process.connected) process.disconnect();
  }
}

/** Applies one message from the supervisor. */
function handleMessage(proxy: ProxyHandle, msg: unknown): void {
  const m = msg as Partial<ParentMessage> | null;
  if (m === null || typeof m !== 'object') return;
  if (m.type === 'state' && isBackendState(m.state)) proxy.setState(m.state, typeof m.model === 'string' ? m.model : undefined);
  else if (m.type === 'reload-keys') proxy.reloadKeys().catch(() => {}); // the failure is logged; old keys stay
  else if (m.type === 'drain') {
    const timeoutMs = typeof m.timeoutMs === 'number' && m.timeoutMs >= 0 ? m.timeoutMs : 30_000;
    void proxy.drain(timeoutMs).then((remaining) => send({ type: 'drained', remaining }));
  }
}

/** Resolves on SIGTERM or when the IPC channel closes (the parent is gone); SIGINT is ignored meanwhile. */
function stopSignal(): { promise: Promise<void>; dispose(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  // Ignored: the supervisor decides the stopping order (a terminal's Ctrl-C reaches only its group anyway).
  const onSigint = () => {};
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', resolve);
  process.on('disconnect', resolve);
  if (!process.connected) resolve();
  return {
    promise,
    dispose() {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', resolve);
      process.off('disconnect', resolve);
    },
  };
}

/** The settings from the first `start` message (the channel closing is handled by stopSignal). */
function waitForStart(): Promise<ProxySettings> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: unknown) => {
      const m = msg as Partial<ParentMessage> | null;
      if (m === null || typeof m !== 'object' || m.type !== 'start') return;
      process.off('message', onMessage);
      const s = m.settings;
      if (s === undefined || s === null || typeof s !== 'object' || typeof s.port !== 'number' || typeof s.backendUrl !== 'string') {
        reject(new LlmserveError('USAGE', 'the start message carries no valid proxy settings'));
        return;
      }
      resolve(s);
    };
    process.on('message', onMessage);
  });
}

/** Sends a message to the parent and waits until it is written (a no-op once disconnected). */
function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || process.send === undefined) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}
