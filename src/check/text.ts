// The `check` report for people: one line per check with its time, failures with their reason.
import type { CheckReport, CheckTargets } from './types.js';

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

/**
 * Why a failing check may have looked in the wrong place: no running start's runtime file in the probe directory (a
 * start whose default directory was not writable used a temporary one, and said so), so the ports were resolved.
 */
export function noRuntimeFileLine(t: CheckTargets): string {
  return `no runtime file (llmserve.json) of a running llmserve in probe directory ${t.probeDir}: checked port ${t.proxy.port} (proxy) and ${t.backend.port} (vLLM) as start resolves them (flags, environment, config file, defaults); for a start that said "using DIR instead", run: llmserve check --probe-dir DIR`;
}
