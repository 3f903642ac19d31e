// With several models, the vLLM series that carry no `model_name` label (its info gauges: `vllm:cache_config_info`,
// `vllm:lora_requests_info`) come out alike from every vLLM: merged into one page they would be one series twice (a
// sample Prometheus drops) or several that no one can tell apart. Labelled with their model's name, they stay apart.
import { escapeLabel } from './registry.js';

/** `page` with `model_name="<name>"` added to each sample that has no `model_name` label; other lines as they are. */
export function labelModel(page: string, name: string): string {
  const label = `model_name="${escapeLabel(name)}"`;
  const lines = page.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '' || line.startsWith('#')) continue;
    const end = line.search(/[{ \t]/);
    if (end < 0) continue; // no value: not a sample
    if (line[end] !== '{') {
      lines[i] = `${line.slice(0, end)}{${label}}${line.slice(end)}`;
    } else if (!hasModelName(line, end)) {
      const empty = /^\{\s*\}/.test(line.slice(end));
      lines[i] = `${line.slice(0, end + 1)}${label}${empty ? '' : ','}${line.slice(end + 1)}`;
    }
  }
  return lines.join('\n');
}

/**
 * Whether the label set opening at `open` has a `model_name` label. Reads it pair by pair, so that a value that
 * contains `model_name="` (or a `}`, or an escaped quote) is not taken for a label. A set it cannot read counts as
 * having one: such a line is left as it is.
 */
function hasModelName(line: string, open: number): boolean {
  let i = open + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t' || line[i] === ',') i++;
    if (i >= line.length) return true;
    if (line[i] === '}') return false;
    const eq = line.indexOf('=', i);
    const quote = eq < 0 ? -1 : line.indexOf('"', eq);
    if (quote < 0) return true;
    if (line.slice(i, eq).trim() === 'model_name') return true;
    let j = quote + 1;
    while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
    i = j + 1;
  }
}
