// The `check` report for people: one line per check with its time, failures with their reason.
import type { CheckReport } from './types.js';

/** Formats milliseconds like `1.2 ms`, `1530 ms`. */
export function formatMs(ms: number): string {
  return ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** One line per check (`ok   vllm /health  1.2 ms`; `busy` for a saturated vLLM's), then one per skipped check; pure. */
export function checkLines(report: CheckReport): string[] {
  const width = Math.max(0, ...report.checks.map((c) => c.name.length));
  const verdict = (c: CheckReport['checks'][number]) => (!c.ok ? `  ${c.url}: ${c.error ?? 'failed'}` : c.busy !== undefined ? `  ${c.busy}` : '');
  const lines = report.checks.map((c) => `${!c.ok ? 'FAIL' : c.busy !== undefined ? 'busy' : 'ok  '} ${c.name.padEnd(width)}  ${formatMs(c.ms)}${verdict(c)}`);
  for (const s of report.skipped) lines.push(`skip ${s.name}: ${s.reason}`);
  if (report.healthy && report.checks.some((c) => !c.ok)) lines.push('healthy: probes.require is any, and another model passes');
  return lines;
}
