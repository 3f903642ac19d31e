// Numbers where a string goes (vLLM's flags and environment): kept as written, not as JavaScript prints them.
import { isAlias, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';

/**
 * The places whose values become strings (`*` any key, `[]` any list item). Why: YAML reads `8130e14` (a git
 * revision), `1.10` (a version) and `0022` (a umask) as numbers, and String() of those is 813000000000000000, 1.1
 * and 22: a different value reaching vLLM without any error.
 */
const STRING_PLACES: readonly (readonly string[])[] = [
  ['environment_variables', '*'],
  ['vllm', 'env', '*'],
  ['vllm', 'args', '[]'],
  ['models', '[]', 'vllm', 'env', '*'],
  ['models', '[]', 'vllm', 'args', '[]'],
];

/** Nested merge keys followed at most; a deeper (or self-referencing) `<<:` is left to the loader's own checks. */
const MAX_MERGE_DEPTH = 16;

const fits = (path: readonly string[], place: readonly string[]): boolean =>
  path.every((part, i) => place[i] !== undefined && (place[i] === part || (place[i] === '*' && part !== '[]')));

/** Turns every number scalar in a string place into the text it was written as (before the document is read). */
export function keepNumbersAsWritten(doc: Document): void {
  walk(doc.contents, [], doc, 0);
}

function walk(node: unknown, path: readonly string[], doc: Document, merges: number): void {
  if (!STRING_PLACES.some((place) => fits(path, place))) return;
  const target = isAlias(node) ? node.resolve(doc) : (node as Node | null);
  if (isScalar(target)) {
    const full = STRING_PLACES.some((place) => place.length === path.length && fits(path, place));
    if (full && typeof target.value === 'number' && target.source !== undefined) target.value = target.source;
    return;
  }
  if (isSeq(target)) {
    for (const item of target.items) walk(item, [...path, '[]'], doc, merges);
    return;
  }
  if (!isMap(target)) return;
  for (const pair of target.items) {
    if (!isScalar(pair.key)) continue;
    // A merge key (`<<: *base`, `<<: [*a, *b]`; the parser makes a plain `<<` a symbol) brings its mapping's keys to
    // this same place.
    if (typeof pair.key.value === 'symbol') {
      const value = isAlias(pair.value) ? pair.value.resolve(doc) : pair.value;
      if (merges < MAX_MERGE_DEPTH) for (const item of isSeq(value) ? value.items : [value]) walk(item, path, doc, merges + 1);
      continue;
    }
    walk(pair.value, [...path, String(pair.key.value)], doc, merges);
  }
}
