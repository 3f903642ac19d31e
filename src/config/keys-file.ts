// `proxy.keys_file`: a YAML list of key entries, read at start and again on SIGHUP.
import { readFile as fsReadFile } from 'node:fs/promises';
import { configError } from '../errors.js';
import { resolveEnvRefs } from './env-ref.js';
import { mergeKeys, parseKeyList, type LoadedKeys } from './keys.js';
import { parseYaml } from './yaml.js';

/** Side effects of reading a keys file. */
export interface KeysFileDeps {
  env?: NodeJS.ProcessEnv;
  readFile?: (p: string) => Promise<string>;
  /** The config file that names it (`proxy.keys_file`), said when it cannot be read: relative paths start there. */
  namedIn?: string;
}

/**
 * Reads a keys file (at start and on SIGHUP) with everything known about it: entries, weak-key notes, raw values and
 * env names (for redaction).
 */
export async function readKeysFile(path: string, deps: KeysFileDeps = {}): Promise<LoadedKeys> {
  const readFile = deps.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  let text: string;
  try {
    text = await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    const from = deps.namedIn === undefined ? '' : ` (proxy.keys_file in ${deps.namedIn})`;
    throw configError(`${path}: cannot read the keys file${from}: ${reason}`);
  }
  const refs = new Map<string, string>();
  const parsed = resolveEnvRefs(parseYaml(text, path), '', { env: deps.env ?? process.env, file: path, refs });
  // mergeKeys checks names and keys for duplicates inside the file.
  return mergeKeys(parseKeyList(parsed, path, '', refs));
}
