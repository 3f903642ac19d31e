// What the model path itself tells before vLLM starts: missing, a file where a directory belongs, a GGUF file.
import path from 'node:path';
import { stat } from 'node:fs/promises';
import { LlmserveError } from '../errors.js';
import { workingDir } from '../util/cwd.js';
import { isGgufPath, type ModelInfo } from './model.js';

/** The problems (which stop start) and warnings about a model path, its messages passed through `named`. */
export interface ModelPathFindings {
  problems: LlmserveError[];
  warnings: string[];
}

/** Checks an inspected model path; `args` are the model's extra vLLM arguments (for --tokenizer). */
export async function modelPathFindings(info: ModelInfo, args: readonly string[], named: (text: string) => string, cwd = workingDir()): Promise<ModelPathFindings> {
  const model = info.model;
  if (info.isLocalPath && !info.exists) {
    const fix = 'Fix: give the directory that holds config.json and the weights with --model PATH (or model:), or a hub id such as Qwen/Qwen2.5-1.5B-Instruct.';
    return { problems: [new LlmserveError('MODEL_PATH', named(`model directory ${model} does not exist`), { details: [fix] })], warnings: [] };
  }
  if (info.isFile && isGgufPath(model)) return { problems: [], warnings: ggufNote(model, args, named) };
  if (info.isFile) return { problems: [await fileNotDirectory(model, named, cwd)], warnings: [] };
  if (info.exists && !info.hasConfigJson) return { problems: [], warnings: [named(`model directory ${model} has no config.json; vLLM will probably refuse it`)] };
  return { problems: [], warnings: [] };
}

/** A file such as config.json or a weights file given as the model: the fix is the directory that holds it. */
async function fileNotDirectory(model: string, named: (text: string) => string, cwd: string): Promise<LlmserveError> {
  const parent = path.dirname(model);
  const parentHasConfig = await stat(path.join(path.resolve(cwd, parent), 'config.json')).then((s) => s.isFile(), () => false);
  const fix = parentHasConfig
    ? `Fix: give the directory that holds it: --model ${parent} (or model: ${parent}).`
    : 'Fix: give the directory that holds config.json and the weights with --model PATH (or model:); a single .gguf file is the only file vLLM loads as a model.';
  return new LlmserveError('MODEL_PATH', named(`model ${model} is a file, not a directory`), { details: [fix] });
}

// vLLM serves one .gguf file (experimental), and recommends the base model's tokenizer over converting GGUF's own.
function ggufNote(model: string, args: readonly string[], named: (text: string) => string): string[] {
  if (args.some((a) => /^--tokenizer(=|$)/.test(a))) return [];
  return [named(`model ${model} is a single GGUF file: vLLM's GGUF support is experimental, and it recommends the base model's tokenizer (add --tokenizer HUB_ID after -- or in vllm.args)`)];
}
