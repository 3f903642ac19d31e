// A key's value configured for vLLM's environment under a name that is no key variable: refused at config load.
import { configError } from '../errors.js';
import { hashKey } from './keys.js';
import type { KeyEntry } from './types.js';
import { at } from './values.js';

/** Variables configured for vLLM, and where: the file and the key path of their section (`vllm.env`, ...). */
export interface VllmEnvSource {
  file: string;
  path: string;
  env: Readonly<Record<string, string>>;
}

/**
 * Refuses a variable configured for vLLM whose value is an API key (a raw key, or the key a `key_sha256` is the digest
 * of), unless its name is one vLLM's environment leaves out anyway (`dropped`: key variables, VLLM_API_KEY, ...).
 * Why: `X: os.environ/TEAM_KEY`, with TEAM_KEY also a key's variable, would hand that key to vLLM under another name,
 * where its environment is readable in /proc by the same user; refused rather than dropped, as the entry asks for the
 * key there and vLLM would otherwise start without a variable it was configured with.
 */
export function refuseKeysInVllmEnv(sources: readonly VllmEnvSource[], keys: readonly KeyEntry[], dropped: readonly string[]): void {
  if (keys.length === 0) return;
  for (const source of sources) {
    for (const [name, value] of Object.entries(source.env)) {
      if (value === '' || dropped.includes(name)) continue;
      const digest = hashKey(value);
      const key = keys.find((k) => k.sha256.equals(digest));
      if (key === undefined) continue;
      throw configError(
        `${at(source.file, `${source.path}.${name}`)}: expected a value that is no API key, got the key "${key.name}" ([redacted]); ` +
          `keys never reach vLLM's environment (any process of the same user can read it in /proc) and vLLM does not need them: ` +
          `give vLLM a secret of its own, or remove ${name} from ${source.path}`,
      );
    }
  }
}
