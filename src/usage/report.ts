// What `llmserve usage` prints: rows per key and model, as JSON, as a table, and a per-day bar chart.
import { escapeInvisible, lineValue } from '../util/line-safe.js';
import type { UsageTotal } from './types.js';

/** One line of the report: a key's use of a model over the whole period. */
export interface ReportRow {
  key: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  errors: number;
}

/** Sums rows (hourly, or already summed per key and model) per key and model, sorted by key then model. */
export function summarise(rows: readonly UsageTotal[]): { rows: ReportRow[]; estimated: Map<string, number> } {
  const by = new Map<string, ReportRow>();
  const estimated = new Map<string, number>();
  for (const r of rows) {
    const id = `${r.key}\u0000${r.model}`;
    let out = by.get(id);
    if (out === undefined) by.set(id, (out = { key: r.key, model: r.model, requests: 0, prompt_tokens: 0, completion_tokens: 0, errors: 0 }));
    out.requests += r.requests;
    out.prompt_tokens += r.promptTokens;
    out.completion_tokens += r.completionTokens;
    out.errors += r.errors;
    if (r.estimated > 0) estimated.set(id, (estimated.get(id) ?? 0) + r.estimated);
  }
  const sorted = [...by.values()].sort((a, b) => a.key.localeCompare(b.key) || a.model.localeCompare(b.model));
  return { rows: sorted, estimated };
}

/** The `--json` document: exactly `{"rows": [{key, model, requests, prompt_tokens, completion_tokens, errors}]}`. */
export function toJson(rows: readonly ReportRow[]): string {
  const json = JSON.stringify({ rows: rows.map((r) => ({ key: r.key, model: r.model, requests: r.requests, prompt_tokens: r.prompt_tokens, completion_tokens: r.completion_tokens, errors: r.errors })) });
  // The same values; a U+2028 in a key name would otherwise end the line for a reader splitting on Unicode line ends.
  return escapeInvisible(json) + '\n';
}

const group = (n: number): string => n.toLocaleString('en-US');

/** A plain-text table with a total line; rows with estimated tokens are marked `~`. */
export function toTable(rows: readonly ReportRow[], estimated: ReadonlyMap<string, number>): string {
  const header = ['KEY', 'MODEL', 'REQUESTS', 'PROMPT', 'COMPLETION', 'TOTAL', 'ERRORS'];
  const body = rows.map((r) => {
    const est = estimated.has(`${r.key}\u0000${r.model}`) ? '~' : '';
    // Key names are the operator's (a space in LiteLLM aliases like "Team A"), models the clients' (`other` unless
    // served): quoted where a space, a line break or a control would break the table or drive the terminal.
    return [lineValue(r.key), lineValue(r.model), group(r.requests), group(r.prompt_tokens), group(r.completion_tokens), est + group(r.prompt_tokens + r.completion_tokens), group(r.errors)];
  });
  const sum = (f: (r: ReportRow) => number) => rows.reduce((acc, r) => acc + f(r), 0);
  if (rows.length > 1) {
    body.push(['TOTAL', '', group(sum((r) => r.requests)), group(sum((r) => r.prompt_tokens)), group(sum((r) => r.completion_tokens)), group(sum((r) => r.prompt_tokens + r.completion_tokens)), group(sum((r) => r.errors))]);
  }
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((line) => (line[i] ?? '').length)));
  const lines = all.map((line) => line.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
  if (estimated.size > 0) lines.push('', '~ includes estimated tokens (the backend reported no usage for some requests)');
  return lines.join('\n') + '\n';
}

/**
 * A small horizontal bar chart of tokens per UTC day (`byDay`: days since the epoch, oldest first, as the store's
 * tokensByDay gives them; the last `maxDays` that have any are drawn).
 */
export function dayChart(byDay: ReadonlyArray<{ day: number; tokens: number }>, width = 40, maxDays = 14): string {
  const days = byDay.slice(-maxDays);
  if (days.length === 0) return '';
  const max = Math.max(...days.map((d) => d.tokens), 1);
  const lines = days.map((d) => {
    const n = Math.round((d.tokens / max) * width);
    return `${new Date(d.day * 86_400_000).toISOString().slice(0, 10)}  ${'█'.repeat(n)}${n === 0 && d.tokens > 0 ? '▏' : ''} ${group(d.tokens)}`;
  });
  return ['Tokens per day (UTC)', ...lines].join('\n') + '\n';
}
