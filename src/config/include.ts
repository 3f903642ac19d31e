// LiteLLM's `include:`: a config split over several files, merged as LiteLLM's proxy merges them.
import path from 'node:path';
import { configError } from '../errors.js';
import { isMap, kindOf } from './values.js';
import { parseYaml } from './yaml.js';

/** A document with its includes merged in, which included file each top-level key now comes from, and notes. */
export interface Included {
  doc: unknown;
  /** Top-level key -> the included file its whole value comes from (keys of the parent's own are absent). */
  origins: Record<string, string>;
  notes: string[];
}

/**
 * Reads the files a config's top-level `include:` names (relative to that config) and merges them into it, in order,
 * as LiteLLM's `_process_includes` does: a list (`model_list`) is appended to the one already there, any other key
 * replaces it (a note says so where one was there: LiteLLM does it silently). A document without `include:` is
 * returned as it is.
 */
export async function withIncludes(doc: unknown, file: string, readFile: (p: string) => Promise<string>): Promise<Included> {
  const origins: Record<string, string> = {};
  const notes: string[] = [];
  if (!isMap(doc) || !('include' in doc)) return { doc, origins, notes };
  const list = doc['include'];
  if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string' && p.trim() !== '')) {
    throw configError(`${file}: include: expected a list of file paths (as LiteLLM's include:), got ${kindOf(list)}`);
  }
  const out: Record<string, unknown> = { ...doc };
  delete out['include'];
  for (const [i, name] of list.entries()) {
    const target = path.resolve(path.dirname(file), name);
    const part = await readIncluded(target, `${file}: include[${i}]`, readFile);
    if (part === null || part === undefined) continue;
    if (!isMap(part)) throw configError(`${target}: expected a mapping of settings (included by ${file}), got ${kindOf(part)}`);
    for (const [key, value] of Object.entries(part)) mergeKey(out, key, value, target, file, origins, notes);
  }
  return { doc: out, origins, notes };
}

async function readIncluded(target: string, where: string, readFile: (p: string) => Promise<string>): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(target);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw configError(`${where}: cannot read ${target}: ${why}`);
  }
  return parseYaml(text, target);
}

/** One top-level key of an included file: a list extends the list there, anything else replaces what was there. */
function mergeKey(out: Record<string, unknown>, key: string, value: unknown, target: string, file: string, origins: Record<string, string>, notes: string[]): void {
  // LiteLLM reads an included file's own include: too (its loop extends the list it walks); llmserve reads one level.
  if (key === 'include') throw configError(`${target}: include: an included file cannot include others in llmserve; list every file in the include: of ${file}`);
  if (key === 'model_list' && !Array.isArray(value)) throw configError(`${target}: model_list: expected a list of models, got ${kindOf(value)}`);
  const before = out[key];
  if (Array.isArray(value) && Array.isArray(before)) {
    out[key] = [...(before as unknown[]), ...(value as unknown[])];
    // Entries of several files: no one file to name.
    delete origins[key];
    return;
  }
  if (before !== undefined && before !== null) {
    notes.push(`${target}: ${key} replaces the ${key} of ${origins[key] ?? file} (as LiteLLM merges include: an included file's section wins; only lists such as model_list are combined)`);
  }
  out[key] = value;
  origins[key] = target;
}
