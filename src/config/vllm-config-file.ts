// vLLM's own `--config FILE`: a YAML mapping of its flags, which vLLM puts on its command line right after the
// model (vllm/utils/argparse_utils.py, _pull_args_from_config). llmserve's own flags come later there and still win;
// but a flag llmserve refuses (a key, TLS, a Unix socket) would pass unseen by the checks of vllm.args.
import path from 'node:path';
import { usageError } from '../errors.js';
import { refusedFlagReason } from './extra-args.js';
import { isMap } from './values.js';
import { parseYaml } from './yaml.js';

/** The file `--config` names in vLLM's arguments (`--config F` or `--config=F`), or null. */
export function vllmConfigFile(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--config' && i + 1 < args.length) return args[i + 1]!;
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return null;
}

/**
 * Refuses (exit 2) a vLLM config file that sets a flag llmserve refuses on the command line, naming the file and the
 * key, never the value (it may be a key). Why: `api-key` there turned vLLM's own auth on, and the start waited out its
 * timeout on 401s; `ssl-*` or `uds` there, on a port that never answers plain HTTP. A file that cannot be read or
 * parsed is left to vLLM, which says so itself.
 */
export async function checkVllmConfigFile(args: readonly string[], origin: string, cwd: string, readFile: (p: string) => Promise<string>): Promise<void> {
  const given = vllmConfigFile(args);
  if (given === null) return;
  const file = path.resolve(cwd, given);
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(file), file);
  } catch {
    return;
  }
  if (!isMap(doc)) return;
  for (const key of Object.keys(doc)) {
    const why = refusedFlagReason(`--${key}`);
    if (why !== undefined) throw usageError(`${origin}: --config ${given}: ${key} is refused (vLLM puts it on its own command line): ${why}`);
  }
}
