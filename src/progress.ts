// Start-up progress: a live status line on a terminal, one line per phase change elsewhere.
import { phaseOf, type StartupPhase } from './engine/phases.js';
import type { Logger } from './log.js';
import { formatSeconds } from './util/time.js';

/** What the supervisor tells the progress display. */
export interface StartupProgress {
  /** Shows a vLLM line (or not) and follows the phases; returns true when the raw line should be printed. */
  line(text: string): boolean;
  /** Clears the status line (before a summary or an error is printed). */
  stop(): void;
}

export interface ProgressOptions {
  logger: Logger;
  /** A terminal: draw a status line and hide vLLM's raw lines (unless verbose). */
  tty: boolean;
  verbose: boolean;
  write: (text: string) => void;
  now: () => number;
}

const barWidth = 20;

/** Creates the progress display for one vLLM start-up. */
export function createProgress(options: ProgressOptions): StartupProgress {
  const started = options.now();
  let phase: StartupPhase | null = null;
  let drawn = false;
  const elapsed = () => formatSeconds((options.now() - started) / 1000);
  const draw = () => {
    if (!options.tty) return;
    const label = phase?.label ?? 'starting vLLM';
    const bar = phase?.fraction !== undefined ? ` [${'#'.repeat(Math.round(phase.fraction * barWidth)).padEnd(barWidth, '.')}] ${Math.round(phase.fraction * 100)}%` : '';
    // \r + clear-to-end-of-line: one status line rewritten in place.
    options.write(`\r\x1b[2Kllmserve | ${label}${bar}  ${elapsed()}`);
    drawn = true;
  };
  const timer = options.tty ? setInterval(draw, 1000) : null;
  timer?.unref();
  if (options.tty) draw();
  return {
    line(text) {
      const next = phaseOf(text);
      if (next && (next.id !== phase?.id || next.fraction !== phase?.fraction)) {
        const changed = next.id !== phase?.id;
        phase = next;
        if (options.tty) draw();
        else if (changed) options.logger.info(`vLLM: ${next.label} (${elapsed()})`, { phase: next.id });
      }
      if (!options.tty || options.verbose) {
        if (drawn) options.write('\r\x1b[2K');
        return true;
      }
      return false;
    },
    stop() {
      if (timer) clearInterval(timer);
      if (drawn) options.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
