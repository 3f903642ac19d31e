// Start-up progress: a live status line on a terminal, one line per phase change elsewhere.
import { phaseOf, type StartupPhase } from './engine/phases.js';
import type { Logger } from './log.js';
import { formatSeconds } from './util/time.js';

/** What the supervisor tells the progress display. */
export interface StartupProgress {
  /** Whether vLLM's raw lines are shown now (off a terminal, with --verbose, or once the display stopped). */
  showsRawLines(): boolean;
  /** Follows the phases in one vLLM line: redraws the status line, or logs one line per phase change. */
  line(text: string): void;
  /** Ends the display (ready, failed or stopped): clears the status line; later lines are all shown. */
  stop(): void;
}

/** How vLLM's load progress is shown: through which logger, on a terminal or not, and under which label. */
export interface ProgressOptions {
  logger: Logger;
  /** A terminal: draw a status line (logger.status) and hide vLLM's raw lines (unless verbose). */
  tty: boolean;
  verbose: boolean;
  now: () => number;
  /** What the phase lines name: `vLLM` (default), or `vLLM "NAME"` with several models, whose start-ups interleave. */
  label?: string;
}

const barWidth = 20;

/** Creates the progress display for one vLLM start-up. */
export function createProgress(options: ProgressOptions): StartupProgress {
  const started = options.now();
  let phase: StartupPhase | null = null;
  let stopped = false;
  const elapsed = () => formatSeconds((options.now() - started) / 1000);
  const draw = () => {
    if (!options.tty) return;
    const label = phase?.label ?? 'starting vLLM';
    const bar = phase?.fraction !== undefined ? ` [${'#'.repeat(Math.round(phase.fraction * barWidth)).padEnd(barWidth, '.')}] ${Math.round(phase.fraction * 100)}%` : '';
    options.logger.status(`llmserve | ${label}${bar}  ${elapsed()}`);
  };
  const timer = options.tty ? setInterval(draw, 1000) : null;
  timer?.unref();
  if (options.tty) draw();
  return {
    showsRawLines() {
      return stopped || !options.tty || options.verbose;
    },
    line(text) {
      if (stopped) return;
      const next = phaseOf(text);
      if (next && (next.id !== phase?.id || next.fraction !== phase?.fraction)) {
        const changed = next.id !== phase?.id;
        phase = next;
        if (options.tty) draw();
        else if (changed) options.logger.info(`${options.label ?? 'vLLM'}: ${next.label} (${elapsed()})`, { phase: next.id });
      }
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      if (options.tty) options.logger.status(null);
    },
  };
}
