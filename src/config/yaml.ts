// YAML text -> plain value, with `FILE:LINE:COL:` on syntax errors.
import { parseDocument, visit, type Document } from 'yaml';
import { configError } from '../errors.js';
import { keepNumbersAsWritten } from './number-text.js';

/**
 * Refuses text with U+FFFD. Why: files are read as UTF-8 and Node turns every byte that is not UTF-8 (a Latin-1
 * `café`) into U+FFFD without an error, so a key or a model path would silently become another value.
 */
function checkUtf8(text: string, file: string): void {
  const i = text.indexOf('\uFFFD');
  if (i < 0) return;
  throw configError(`${positionOf(text, i, file)}: not valid UTF-8 (a byte of another encoding, read as U+FFFD); save the file as UTF-8 (iconv -f latin1 -t utf-8)`);
}

/**
 * A YAML library message without the file's text it quotes. Why: a value the parser chokes on may be a key (one that
 * starts with `*`, `|` or `>` reads as an alias or a block scalar), and at load time no key is known to redact yet.
 */
function withoutSource(message: string): string {
  return message.replace(/^(Block scalar header includes extra characters|Unresolved alias \(the anchor must be set before the alias\)): .*$/, '$1 (the text is not shown: it may be a key; quote the value)');
}

/** `FILE:LINE:COL` of an offset into `text`. */
function positionOf(text: string, offset: number, file: string): string {
  const before = text.slice(0, offset).split('\n');
  return `${file}:${before.length}:${(before[before.length - 1]?.length ?? 0) + 1}`;
}

/**
 * Refuses a NUL character (written `"\0"`, `"\x00"` or `"\u0000"` in a double-quoted string). Why: no command line,
 * environment variable or HTTP header can carry one, and it passed every check to fail only when vLLM was spawned,
 * with a fix that said to install vLLM. The value is not shown: it may be a key.
 */
function refuseNul(doc: Document, text: string, file: string): void {
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('\0')) return;
      throw configError(`${positionOf(text, node.range?.[0] ?? 0, file)}: a NUL character (\\0) in a string, which no command line, environment variable or header can carry; remove it`);
    },
  });
}

/** Parses YAML text; a syntax error names the file, line and column. */
export function parseYaml(text: string, file: string): unknown {
  checkUtf8(text, file);
  // merge: `<<: *anchor` as PyYAML (LiteLLM's loader) resolves it; without it the key stays a literal `<<`. A UTF-8
  // byte-order mark (a file saved by some Windows editors) is no content: the parser takes it so before a mapping,
  // but before a list (a keys file) it failed with "Unexpected scalar at node end" (PyYAML skips it too).
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const doc = parseDocument(source, { uniqueKeys: true, merge: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    const message = withoutSource(err.message.split('\n')[0]?.replace(/ at line \d+, column \d+.*$/, '') ?? 'syntax error');
    // The library's own advice (a call of its API) means nothing to a user: say what to change in the file.
    if (err.code === 'MULTIPLE_DOCS') throw configError(`${where}: invalid YAML: a second document (after \`---\`); a config is one document: remove the \`---\` line and merge the settings`);
    throw configError(`${where}: invalid YAML: ${message}`);
  }
  refuseNul(doc, source, file);
  keepNumbersAsWritten(doc);
  try {
    // A bound on alias expansion (a "billion laughs" file), well above what a long model_list with a shared anchor
    // needs (every entry's `litellm_params: *base` counts).
    return doc.toJS({ maxAliasCount: 10_000 }) as unknown;
  } catch (err) {
    throw configError(`${file}: invalid YAML: ${withoutSource((err as Error).message.split('\n')[0] ?? 'too many aliases')}`);
  }
}
