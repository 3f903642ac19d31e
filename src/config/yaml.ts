// YAML text -> plain value, with `FILE:LINE:COL:` on syntax errors.
import { parseDocument } from 'yaml';
import { configError } from '../errors.js';

/** Parses YAML text; a syntax error names the file, line and column. */
export function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    const message = err.message.split('\n')[0]?.replace(/ at line \d+, column \d+.*$/, '') ?? 'syntax error';
    throw configError(`${where}: invalid YAML: ${message}`);
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}
