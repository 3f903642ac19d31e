// Paths of the test fixtures, temp dirs, fake model directories and an environment that puts the fakes first.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** Absolute path of a file under test/fixtures. */
export function fixturePath(...parts: string[]): string {
  return path.join(fixturesDir, ...parts);
}

/** Absolute path of test/fixtures/bin (fake vllm, fake nvidia-smi). */
export const fixtureBinDir = fixturePath('bin');

const madeDirs: string[] = [];
// Why at exit: node --test runs each test file in a process of its own, so this removes every directory the file
// made once its tests (and the processes they started, which teardown kills) are done, and a run leaves nothing in
// the shared temporary directory. Synchronous, as an 'exit' handler must be.
process.once('exit', () => {
  for (const dir of madeDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A directory that cannot be removed is left; the test's own result stands.
    }
  }
});

/** A fresh temporary directory, removed when the test file's process exits. */
export async function tempDir(prefix = 'llmserve-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/** tempDir for synchronous callers. */
export function tempDirSync(prefix = 'llmserve-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/** A local "model" directory: config.json (Qwen2-like, `heads` attention heads, default 12) and a tiny safetensors file. */
export async function makeModelDir(opts: { heads?: number; kvHeads?: number; maxPositionEmbeddings?: number } = {}): Promise<string> {
  const dir = await tempDir('llmserve-model-');
  const config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: 1536,
    num_attention_heads: opts.heads ?? 12,
    num_key_value_heads: opts.kvHeads ?? 2,
    num_hidden_layers: 28,
    max_position_embeddings: opts.maxPositionEmbeddings ?? 32768,
    torch_dtype: 'bfloat16',
  };
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await fs.writeFile(path.join(dir, 'model.safetensors'), Buffer.alloc(64));
  return dir;
}

/** A copy of process.env with the fakes first on PATH, NO_COLOR=1, plus `extra` (undefined values delete). */
export function envWithFakes(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${fixtureBinDir}${path.delimiter}${process.env.PATH ?? ''}`, NO_COLOR: '1' };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** The original deployment's LiteLLM config, byte for byte (reference/LITELLM.md): test/fixtures/litellm.config.yaml. */
export const LITELLM_CONFIG: string = readFileSync(fixturePath('litellm.config.yaml'), 'utf8');

/** Runs a CLI (a fake, with the fakes first on PATH) to completion; returns code, stdout, stderr whatever the exit code. */
export async function runCli(bin: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // Why 30 s: a fake vLLM's failed start (its API server, then its engine, each a node process) took more than 5 s
    // beside the rest of the suite on two cores, and execFile's timeout kills it and drops the output still to come.
    const r = await promisify(execFile)(bin, args, { env: envWithFakes(env), timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
