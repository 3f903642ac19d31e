// Users coming from a vllm.sh write vLLM's flags where llmserve's own go: say where vLLM's belong instead.
import { ownedFlagReason } from './extra-args.js';
import { looksSecret } from './values.js';

/** The flag as vLLM's command line spells it, with the value given (`gpu_memory_utilization: 0.9` -> `--gpu-memory-utilization=0.9`). */
function asFlag(key: string, value: unknown): string {
  const flag = `--${key.replace(/_/g, '-')}`;
  if (value === true) return flag;
  // A value that looks like a key or token (`token: sk-...`) is never printed in an error.
  if (typeof value === 'string' && looksSecret(value)) return `${flag}=VALUE`;
  return typeof value === 'string' || typeof value === 'number' ? `${flag}=${value}` : `${flag}=VALUE`;
}

/** For an unknown key in a `vllm:` section (`argsPath` is that section's args): vLLM's own flags go in args, or after --. */
export function vllmKeyHint(key: string, value: unknown, argsPath: string): string {
  const flag = asFlag(key, value);
  const owned = ownedFlagReason(flag);
  if (owned !== undefined) return `as vLLM's flag ${flag.replace(/=.*/, '')}: ${owned}`;
  return `vLLM's own flags go in ${argsPath} (- ${flag}), or after "--" on the command line (llmserve start ... -- ${flag})`;
}

/** For an unknown option of start or probe: vLLM's own flags go after --, or in the config's vllm.args. */
export function vllmOptionHint(command: string, option: string): string {
  const owned = ownedFlagReason(option);
  if (owned !== undefined) return `as vLLM's flag ${option.replace(/=.*/, '')}: ${owned}`;
  const example = option.includes('=') ? option : `${option} VALUE`;
  return `vLLM's own flags go after "--" (llmserve ${command} --model M -- ${example}), or in the config's vllm.args`;
}
