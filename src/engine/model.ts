// Look at the model before vLLM does: is it a local path, does it exist, how many heads, how big.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { workingDir } from '../util/cwd.js';

/** What llmserve can learn about the model without loading it. */
export interface ModelInfo {
  /** The value as configured. */
  model: string;
  /** True when it names a local path (absolute, relative with ./ or ../, ~, or an existing directory). */
  isLocalPath: boolean;
  /** True when the path exists, as a directory or as a file (see isFile). */
  exists: boolean;
  /** True when the path is a file, not a directory: a single .gguf file vLLM can load, or a file given by mistake. */
  isFile: boolean;
  hasConfigJson: boolean;
  /** `num_attention_heads` from config.json (also looked up under text_config / llm_config), or null. */
  attentionHeads: number | null;
  /** `num_key_value_heads` beside it (grouped-query attention), or null when absent (then as many as attention heads). */
  keyValueHeads: number | null;
  /** Bytes of weight files (*.safetensors, *.bin, *.pt, *.gguf) at the top level, or null when not local. */
  weightBytes: number | null;
}

/** Inspects a model path or hub id; never throws (a hub id is reported as not local). */
export async function inspectModel(model: string, cwd = workingDir()): Promise<ModelInfo> {
  const looksLocal = /^(\/|\.\.?(\/|$)|~)/.test(model);
  const resolved = path.resolve(cwd, model);
  const found = await stat(resolved).catch(() => null);
  const isDir = found?.isDirectory() ?? false;
  const isFile = found?.isFile() ?? false;
  const info: ModelInfo = { model, isLocalPath: looksLocal || isDir || isFile, exists: isDir || isFile, isFile, hasConfigJson: false, attentionHeads: null, keyValueHeads: null, weightBytes: null };
  // A single GGUF file is the whole model: its size is the weights' size.
  if (isFile) return { ...info, weightBytes: isGgufPath(model) ? (found?.size ?? 0) : null };
  if (!isDir) return info;
  const configText = await readFile(path.join(resolved, 'config.json'), 'utf8').catch(() => null);
  if (configText !== null) {
    info.hasConfigJson = true;
    const heads = headCounts(configText);
    info.attentionHeads = heads.attention;
    info.keyValueHeads = heads.keyValue;
  }
  info.weightBytes = await weightSize(resolved);
  return info;
}

/** True when the path names a GGUF file, which vLLM loads on its own (no directory, no config.json). */
export function isGgufPath(model: string): boolean {
  return /\.gguf$/i.test(model);
}

/**
 * num_attention_heads and num_key_value_heads from a config.json text, from the same (language model's) config;
 * null for either when absent or unparsable.
 */
export function headCounts(text: string): { attention: number | null; keyValue: number | null } {
  const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    // Multimodal models keep the language model's settings in a nested config.
    for (const candidate of [json, json.text_config, json.llm_config, json.language_config]) {
      if (candidate && typeof candidate === 'object') {
        const c = candidate as Record<string, unknown>;
        const attention = count(c.num_attention_heads);
        if (attention !== null) return { attention, keyValue: count(c.num_key_value_heads) };
      }
    }
  } catch {
    // An unparsable config.json is vLLM's to report; llmserve just cannot use it.
  }
  return { attention: null, keyValue: null };
}

async function weightSize(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const entry of entries) {
    if (!entry.isFile() || !/\.(safetensors|bin|pt|pth|gguf)$/.test(entry.name)) continue;
    total += await stat(path.join(dir, entry.name)).then((s) => s.size, () => 0);
  }
  return total;
}
