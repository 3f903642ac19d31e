// `llmserve start` as the interop checks run it: `vllm` is the app on real uvicorn (bin/vllm), nvidia-smi the fake.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEY, root } from '../../bench/targets.mjs';
import { freePort } from '../../test/helpers/free-port.mjs';
import { bin, marked, signal, waitUntil } from '../soak-lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Starts `llmserve start --port P --probe-dir DIR/probe ARGS` in `dir`, with the master key, the usage store in
 * `dir`, the app's notes in `dir/notes.jsonl`, `python` for the app, and `marker` in the environment of every process
 * it starts (llmserve, the proxy, uvicorn), by which what is left is found; `env`: more variables.
 */
export async function launchStart({ dir, python, marker, args, env = {} }) {
  const probeDir = path.join(dir, 'probe');
  const notReady = path.join(probeDir, 'not-ready');
  const notHealthy = path.join(probeDir, 'not-healthy');
  const port = await freePort();
  const logFile = path.join(dir, 'llmserve.log');
  const fullEnv = {
    ...process.env,
    PATH: [path.join(here, 'bin'), path.join(root, 'test/fixtures/bin'), process.env.PATH].join(path.delimiter),
    PYTHON: python,
    INTEROP_NOTES: path.join(dir, 'notes.jsonl'),
    LLMSERVE_MASTER_KEY: KEY,
    LLMSERVE_USAGE_DIR: dir,
    LLMSERVE_TEST_MARKER: marker,
    NO_COLOR: '1',
    ...env,
  };
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [bin, 'start', '--port', String(port), '--probe-dir', probeDir, ...args], { env: fullEnv, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const log = () => fs.readFileSync(logFile, 'utf8');
  return {
    dir,
    port,
    probeDir,
    notReady,
    notHealthy,
    env: fullEnv,
    marker,
    child,
    log,
    exited: new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig))),
    /** The pids of the vLLMs (uvicorn) started so far, in order. */
    started: () => [...log().matchAll(/vLLM started \(pid (\d+)/g)].map((m) => Number(m[1])),
    /** Ready as llmserve says it, and as the probe files say it (the directory exists a moment before `not-ready` does). */
    ready: (ms) => waitUntil(() => log().includes('ready after') && fs.existsSync(probeDir) && !fs.existsSync(notReady) && !fs.existsSync(notHealthy), ms),
    /** The processes of the run still alive. */
    left: () => marked(marker).map((p) => p.pid),
    /** Ends whatever is left of the run. */
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const p of marked(marker)) signal(p.pid, 'SIGKILL');
    },
  };
}
