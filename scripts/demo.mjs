#!/usr/bin/env node
// `npm run demo`: llmserve supervising the FAKE vLLM engine from test/fixtures, so it runs without a GPU.
// The fake answers like vLLM's OpenAI API with canned text; it is a stand-in, not a model.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'llmserve-demo-'));
const model = path.join(tmp, 'Demo-Model-1.5B');
const probeDir = path.join(tmp, 'probe');
// The port start will use: `--port N` among the demo's own arguments wins (commander keeps the last one given).
const port = portFromArgs(process.argv.slice(2)) ?? process.env.DEMO_PORT ?? '8080';
const key = process.env.LLMSERVE_MASTER_KEY ?? 'sk-demo-not-a-secret-0123456789';
await import('node:fs/promises').then((fs) => fs.mkdir(model, { recursive: true }));
writeFileSync(path.join(model, 'config.json'), JSON.stringify({ architectures: ['Qwen2ForCausalLM'], num_attention_heads: 12 }));

console.log(`
  llmserve demo: the engine below is a FAKE vLLM (test/fixtures/bin/vllm) on 2 fake GPUs, not a real model.
  In another terminal, once llmserve prints "ready after N s: http://127.0.0.1:${port} serves ..." (not at
  "vLLM is ready", a moment before it, when the proxy still answers 503):

    curl -s http://127.0.0.1:${port}/v1/chat/completions \\
      -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
      -d '{"model": "Demo-Model-1.5B", "messages": [{"role": "user", "content": "Hello"}]}'

  Probe files: ${probeDir}    Stop with Ctrl-C.
`);

const env = {
  ...process.env,
  PATH: `${path.join(root, 'test/fixtures/bin')}${path.delimiter}${process.env.PATH}`,
  LLMSERVE_MASTER_KEY: key,
  FAKE_VLLM_LOAD_MS: process.env.FAKE_VLLM_LOAD_MS ?? '2000',
  // The fake ends itself after 2 minutes by default (a safety net for leaked test processes): the demo runs until Ctrl-C.
  FAKE_VLLM_MAX_LIFETIME_MS: process.env.FAKE_VLLM_MAX_LIFETIME_MS ?? '0',
  // The usage store would default to the working directory (the checkout): keep the demo's in its own folder.
  LLMSERVE_USAGE_DIR: process.env.LLMSERVE_USAGE_DIR ?? tmp,
};
const child = spawn(process.execPath, [path.join(root, 'bin/llmserve.js'), 'start', '--model', model, '--port', port, '--probe-dir', probeDir, '--health-interval', '2', ...process.argv.slice(2)], { env, stdio: 'inherit' });
// Ctrl-C reaches both of us (same foreground group); llmserve handles it, the demo just waits for its exit code.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => {
  // Its fake model, probe files and usage store go with it.
  rmSync(tmp, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});

/** The value of the last `--port N` / `--port=N` before `--` (what follows goes to vLLM), or undefined. */
function portFromArgs(args) {
  let found;
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    if (args[i] === '--port' && i + 1 < args.length) found = args[++i];
    else if (args[i].startsWith('--port=')) found = args[i].slice('--port='.length);
  }
  return found;
}
