// LiteLLM's `include:`: a config split over several files, whose model_list entries are combined.
import path from 'node:path';
import { configError } from '../errors.js';
import { isMap, kindOf } from './values.js';
import { parseYaml } from './yaml.js';

/**
 * Reads the files a config's top-level `include:` names (relative to that config) and merges them into it, as
 * LiteLLM does: `model_list` entries are appended to the parent's, any other section the parent lacks is taken
 * from the first file that has it. A document without `include:` is returned as it is.
 */
export async function withIncludes(doc: unknown, file: string, readFile: (p: string) => Promise<string>): Promise<unknown> {
  if (!isMap(doc) || !('include' in doc)) return doc;
  const list = doc['include'];
  if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string' && p.trim() !== '')) {
    throw configError(`${file}: include: expected a list of file paths (as LiteLLM's include:), got ${kindOf(list)}`);
  }
  const out: Record<string, unknown> = { ...doc };
  delete out['include'];
  const models: unknown[] = Array.isArray(out['model_list']) ? [...(out['model_list'] as unknown[])] : [];
  for (const [i, name] of list.entries()) {
    const target = path.resolve(path.dirname(file), name);
    let text: string;
    try {
      text = await readFile(target);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw configError(`${file}: include[${i}]: cannot read ${target}: ${why}`);
    }
    const part = parseYaml(text, target);
    if (part === null || part === undefined) continue;
    if (!isMap(part)) throw configError(`${target}: expected a mapping of settings (included by ${file}), got ${kindOf(part)}`);
    for (const [key, value] of Object.entries(part)) {
      if (key === 'model_list') {
        if (!Array.isArray(value)) throw configError(`${target}: model_list: expected a list of models, got ${kindOf(value)}`);
        models.push(...(value as unknown[]));
      } else if (key === 'include') {
        throw configError(`${target}: include: an included file cannot include others (LiteLLM does not either)`);
      } else if (!(key in out)) out[key] = value;
    }
  }
  if (models.length > 0) out['model_list'] = models;
  return out;
}
