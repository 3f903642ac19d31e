// `os.environ/NAME` values, as in LiteLLM: read from the environment when the config is loaded.
import { configError } from '../errors.js';
import { at, isMap, joinPath, looksSecret } from './values.js';

const PREFIX = 'os.environ/';
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Where references are read from, and where the ones used are recorded (key path -> NAME). */
export interface EnvRefContext {
  env: NodeJS.ProcessEnv;
  file: string;
  refs: Map<string, string>;
}

/**
 * A variable name that is more likely a key: 20 characters or more, without `_`, mixing lower case with upper case
 * or digits (names are words: `OPENAI_API_KEY`, `hfToken`; keys are random).
 */
function looksLikeKey(name: string): boolean {
  return name.length >= 20 && !name.includes('_') && /[a-z]/.test(name) && /[A-Z0-9]/.test(name);
}

/** True when a value is an `os.environ/NAME` reference. */
export function isEnvRef(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(PREFIX);
}

/** Reads one `os.environ/NAME` string; other values pass through unchanged. */
export function resolveEnvRef(value: unknown, path: string, ctx: EnvRefContext): unknown {
  if (!isEnvRef(value)) return value;
  const name = value.slice(PREFIX.length).trim();
  if (!NAME.test(name)) {
    // Why: a key pasted in place of the variable's name (`master_key: os.environ/sk-...`) must not be printed.
    const shown = looksSecret(name) ? `${PREFIX}[redacted]` : value;
    throw configError(`${at(ctx.file, path)}: expected os.environ/NAME with a variable name, got ${JSON.stringify(shown)}`);
  }
  const found = ctx.env[name];
  if (found === undefined || found === '') {
    // A key pasted in place of the name can be a valid name too (hex from `openssl rand -hex 32` that starts with a
    // letter, or letters and digits only): not printed either.
    if (looksSecret(name) || looksLikeKey(name)) {
      throw configError(`${at(ctx.file, path)}: expected os.environ/NAME with the name of a variable that is set, got os.environ/[redacted], which looks like a key rather than a name: put the key in a variable and write os.environ/ and its name`);
    }
    throw configError(`${at(ctx.file, path)}: environment variable ${name} (from os.environ/${name}) is not set; export ${name}=... before starting, or change the value`);
  }
  ctx.refs.set(path, name);
  return found;
}

/**
 * For a file's master key written `os.environ/NAME` with NAME unset: the master key variable of the environment that
 * overrides the file's key anyway (LLMSERVE_MASTER_KEY, LITELLM_MASTER_KEY), or null. Why: a LiteLLM config kept
 * unchanged says `master_key: os.environ/LITELLM_MASTER_KEY`, and a user who exports LLMSERVE_MASTER_KEY as the README
 * says must not be refused for a variable whose value would not be used.
 */
export function overridingMasterVariable(value: unknown, env: NodeJS.ProcessEnv, masterVariables: readonly string[]): string | null {
  if (!isEnvRef(value)) return null;
  const name = value.slice(PREFIX.length).trim();
  // Not a variable name (a key pasted after os.environ/): the reading's own error, which never prints it.
  if (!NAME.test(name) || (env[name] ?? '') !== '') return null;
  return masterVariables.find((v) => (env[v] ?? '') !== '') ?? null;
}

/** Reads every `os.environ/NAME` string in a value, at any depth, recording each NAME by key path. */
export function resolveEnvRefs(value: unknown, path: string, ctx: EnvRefContext): unknown {
  if (Array.isArray(value)) return value.map((item, i) => resolveEnvRefs(item, joinPath(path, i), ctx));
  if (isMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveEnvRefs(v, joinPath(path, k), ctx);
    return out;
  }
  return resolveEnvRef(value, path, ctx);
}
