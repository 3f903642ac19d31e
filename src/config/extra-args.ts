// Extra vLLM flags (vllm.args and after `--`) must not fight with what llmserve sets itself, nor carry secrets.
import { usageError } from '../errors.js';

const COLLISIONS: Readonly<Record<string, string>> = {
  '--host': 'llmserve binds vLLM to 127.0.0.1; the public address is --host / proxy.host',
  '--port': 'llmserve sets the backend port; use --backend-port / vllm.port',
  '--uds': 'llmserve talks to vLLM over TCP on 127.0.0.1; set the backend port with --backend-port / vllm.port',
  '--model': 'llmserve passes the model itself; use --model / model:',
  '--served-model-name': "llmserve sets it; use llmserve's --served-model-name / served_model_name",
  '--tensor-parallel-size': "llmserve sets it; use llmserve's --tensor-parallel-size / vllm.tensor_parallel_size",
  '-tp': "llmserve sets it; use llmserve's --tensor-parallel-size / vllm.tensor_parallel_size",
  '--api-key': 'keys go in proxy.master_key / LLMSERVE_MASTER_KEY (never on a command line); the proxy checks them, vLLM is private',
  '--hf-token': 'secrets never go on a command line (every process can read it); put the token in the HF_TOKEN environment variable (vllm.env or the container environment)',
  // With both files vLLM serves HTTPS (api_server.py setup_server), which llmserve's HTTP checks and proxy never reach.
  '--ssl-keyfile': 'llmserve talks plain HTTP to vLLM on 127.0.0.1; serve TLS from the proxy with proxy.tls.cert / proxy.tls.key',
  '--ssl-certfile': 'llmserve talks plain HTTP to vLLM on 127.0.0.1; serve TLS from the proxy with proxy.tls.cert / proxy.tls.key',
};

/** Flags refused outright rather than set by llmserve. */
const REFUSED: ReadonlySet<string> = new Set(['--api-key', '--hf-token', '--ssl-keyfile', '--ssl-certfile']);

/**
 * The flag name of an argument, normalised: `--Tensor_Parallel_Size=2` -> `--tensor-parallel-size`. It ends at
 * whitespace too: `--hf-token hf_x` written as one item names --hf-token (refused), not a flag nobody knows.
 */
function flagName(arg: string): string | undefined {
  const m = /^(-{1,2})([^=\s]+)/.exec(arg);
  if (!m?.[1] || !m[2]) return undefined;
  return m[1] + m[2].toLowerCase().replace(/_/g, '-');
}

/**
 * The owned flag a long option abbreviates, if any. Why: vLLM's argparse keeps allow_abbrev on
 * (vllm/entrypoints/cli/main.py), so `--hos 0.0.0.0` is `--host 0.0.0.0` there. No vLLM flag is itself a strict
 * prefix of an owned one, so a strict prefix is an abbreviation (or ambiguous, which vLLM would refuse anyway).
 */
function abbreviated(name: string): string | undefined {
  // `-t` abbreviates `-tp` the same way; a single-dash prefix never matches a `--` flag.
  const long = name.startsWith('--');
  if (name.length < (long ? 3 : 2)) return undefined;
  return Object.keys(COLLISIONS).find((owned) => owned.startsWith('--') === long && owned.length > name.length && owned.startsWith(name));
}

/**
 * Why a vLLM flag may not be given at all (a key, TLS, a Unix socket: any spelling), or undefined. Unlike the flags
 * llmserve sets, which win over an earlier value, these change what vLLM is (it would refuse the proxy's requests, or
 * not serve plain HTTP on its port).
 */
export function refusedFlagReason(arg: string): string | undefined {
  const name = flagName(arg);
  return name !== undefined && (REFUSED.has(name) || name === '--uds') ? COLLISIONS[name] : undefined;
}

/** Why llmserve sets or refuses a vLLM flag given by its exact name (any spelling), or undefined when it is vLLM's to take. */
export function ownedFlagReason(arg: string): string | undefined {
  const name = flagName(arg);
  return name === undefined ? undefined : COLLISIONS[name];
}

/** Where an entry of `models:` sets what llmserve owns (its own keys: the single-model flags set the first entry's). */
const ENTRY_KEYS: Readonly<Record<string, string>> = {
  '--port': 'port',
  '--uds': 'port',
  '--model': 'model',
  '--served-model-name': 'served_model_name',
  '--tensor-parallel-size': 'vllm.tensor_parallel_size',
  '-tp': 'vllm.tensor_parallel_size',
};

/**
 * Throws a usage error (exit 2) on the first extra vLLM argument that llmserve owns (or abbreviates one) or carries a
 * secret. `entry`: the `models[N]` whose own args these are, whose own key is then the fix.
 */
export function checkExtraArgs(args: readonly string[], origin: string, entry?: string): void {
  for (const arg of args) {
    const name = flagName(arg);
    if (name === undefined) continue;
    const owned = COLLISIONS[name] !== undefined ? name : abbreviated(name);
    if (owned === undefined) {
      // argparse reads an item with a space before any `=` as a positional, so vLLM would refuse it after a start
      // that passed every check. The value is not shown: it may be a secret.
      if (/^-{1,2}[A-Za-z][^=]*\s/.test(arg)) {
        throw usageError(`${origin}: "${name} ..." is one argument with a space in it, which vLLM would refuse as an unrecognized argument: give the flag and its value as two items (${name} and its value), or as ${name}=VALUE`);
      }
      continue;
    }
    const verb = REFUSED.has(owned) ? 'is refused' : 'is set by llmserve';
    const shown = owned === name ? name : `${name} (short for ${owned})`;
    const entryKey = entry === undefined ? undefined : ENTRY_KEYS[owned];
    const why = entryKey === undefined ? COLLISIONS[owned] : `llmserve sets it for each model; use ${entry}.${entryKey}`;
    throw usageError(`${origin}: vLLM flag ${shown} ${verb}: ${why}`);
  }
}

/** Flags llmserve sets on a Ray head's vLLM (`--role head`), and why. */
const HEAD_OWNED: Readonly<Record<string, string>> = {
  '--pipeline-parallel-size': 'with --role head llmserve runs one pipeline stage per node; give the number of nodes with --nodes (cluster.nodes)',
  '-pp': 'with --role head llmserve runs one pipeline stage per node; give the number of nodes with --nodes (cluster.nodes)',
  '--distributed-executor-backend': 'with --role head llmserve runs vLLM on the Ray cluster (ray); a Ray head with another executor would use this node alone',
};

/**
 * Why an extra vLLM argument may not be given on a Ray head (any spelling: `_`, `=VALUE`, an abbreviation), or null.
 * Why: llmserve appends its own, which win (last on the command line), and it would size the tensor-parallel groups
 * by the user's: with `-pp 2` on two 8-GPU nodes, tensor-parallel 4 and half the GPUs idle.
 */
export function headOwnedArgReason(args: readonly string[]): string | null {
  for (const arg of args) {
    const name = flagName(arg);
    if (name === undefined) continue;
    const long = name.startsWith('--');
    const owned = Object.keys(HEAD_OWNED).find((flag) => flag === name || (flag.startsWith('--') === long && name.length >= (long ? 3 : 2) && flag.startsWith(name)));
    if (owned !== undefined) return `vLLM flag ${owned === name ? name : `${name} (short for ${owned})`} is set by llmserve: ${HEAD_OWNED[owned]}`;
  }
  return null;
}

/** Flags whose value is a secret: refused in vllm.command too, where nothing else is checked. */
const SECRET_FLAGS: readonly string[] = ['--api-key', '--hf-token'];

/**
 * Throws a usage error (exit 2) when the vLLM command carries a secret flag (`--api-key`, `--hf-token`). Exact names
 * only: the command may be a wrapper (`numactl -t ...`) whose own flags must not be read as abbreviations of vLLM's.
 */
export function checkCommandSecrets(command: readonly string[], origin: string): void {
  for (const arg of command) {
    const name = flagName(arg);
    if (name === undefined || !SECRET_FLAGS.includes(name)) continue;
    throw usageError(`${origin}: vLLM flag ${name} is refused: ${COLLISIONS[name]}`);
  }
}
