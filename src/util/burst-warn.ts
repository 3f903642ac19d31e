// One warning line for a burst of alike failures, where one per failure would flood the log (every request that
// meets a vLLM going down).
import type { LogFields } from '../log.js';

/**
 * A warner that says the first failure of a burst at once, with its fields, and the rest (within `windowMs`) as one
 * line when the window ends, counted by `kind` (an error code); nothing more when the burst was one failure.
 */
export function burstWarner(
  warn: (msg: string, fields?: LogFields) => void,
  message: string,
  options: { windowMs?: number; schedule?: (fn: () => void, ms: number) => void } = {},
): (fields: LogFields, kind: string) => void {
  const windowMs = options.windowMs ?? 1000;
  const schedule = options.schedule ?? ((fn, ms) => setTimeout(fn, ms).unref());
  let more: Map<string, number> | null = null;
  const close = () => {
    const counted = more;
    more = null;
    if (counted === null || counted.size === 0) return;
    const total = [...counted.values()].reduce((a, b) => a + b, 0);
    const kinds = [...counted].map(([kind, n]) => `${kind} x${n}`).join(', ');
    warn(`${message}: ${total} more within ${windowMs / 1000} s (${kinds})`);
  };
  return (fields, kind) => {
    if (more !== null) {
      more.set(kind, (more.get(kind) ?? 0) + 1);
      return;
    }
    warn(message, fields);
    more = new Map();
    schedule(close, windowMs);
  };
}
