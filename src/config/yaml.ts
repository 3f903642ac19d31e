// YAML text -> plain value, with `FILE:LINE:COL:` on syntax errors.
import { parseDocument } from 'yaml';
import { configError } from '../errors.js';

/** Parses YAML text; a syntax error names the file, line and column. */
export function parseYaml(text: string, file: string): unknown {
  // merge: `<<: *anchor` as PyYAML (LiteLLM's loader) resolves it; without it the key stays a literal `<<`.
  const doc = parseDocument(text, { uniqueKeys: true, merge: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    const message = err.message.split('\n')[0]?.replace(/ at line \d+, column \d+.*$/, '') ?? 'syntax error';
    throw configError(`${where}: invalid YAML: ${message}`);
  }
  try {
    // A bound on alias expansion (a "billion laughs" file), well above what a long model_list with a shared anchor
    // needs (every entry's `litellm_params: *base` counts).
    return doc.toJS({ maxAliasCount: 10_000 }) as unknown;
  } catch (err) {
    throw configError(`${file}: invalid YAML: ${(err as Error).message.split('\n')[0] ?? 'too many aliases'}`);
  }
}
