// `llmserve keys generate`: a new random API key and the SHA-256 digest that goes into the config instead of it.
import { randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { hashKey } from '../config/index.js';
import { ExitCode, usageError } from '../errors.js';
import { writeStdout } from '../util/output.js';

/** Options of `keys generate`. */
export interface KeysGenerateOptions {
  name?: string;
  json?: boolean;
}

/** Side effects of `keys generate`, with real defaults. */
export interface KeysDeps {
  write?: (text: string) => void;
  random?: (bytes: number) => Buffer;
}

/** A new strong key: `sk-` and 32 random bytes in base64url (43 characters, safe in shells, URLs and YAML). */
export function newKey(random: (bytes: number) => Buffer = randomBytes): string {
  return `sk-${random(32).toString('base64url')}`;
}

/** The hex SHA-256 of a raw key, as `key_sha256` in a config or keys file expects it. */
export function keyDigestHex(key: string): string {
  return hashKey(key).toString('hex');
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

/** The YAML lines of one `proxy.keys` entry holding only the digest (indented for a paste under `proxy:`). */
export function keyEntryYaml(name: string, digest: string): string[] {
  // Quoted where YAML would read the plain name as something else (123, 1e3, 0x1F, true, null): the config wants a string.
  const scalar = parse(name) === name ? name : JSON.stringify(name);
  return ['proxy:', '  keys:', `    - name: ${scalar}`, `      key_sha256: ${digest}`];
}

/** Runs `llmserve keys generate`; prints the key, its digest and a ready-to-paste config entry. */
export async function runKeysGenerate(options: KeysGenerateOptions, deps: KeysDeps = {}): Promise<number> {
  const write = deps.write ?? writeStdout;
  const name = options.name ?? 'client';
  // Names land unquoted in YAML and in logs: keep them to a plain, unambiguous set.
  if (!NAME.test(name)) throw usageError(`--name: expected letters, digits and . _ @ - (starting with a letter or digit), got ${JSON.stringify(name)}`);
  // The master key's name in logs, metrics and usage: a named key "master" beside it is refused by the config.
  if (name === 'master') throw usageError('--name: "master" is the name of the master key (LLMSERVE_MASTER_KEY) in logs, metrics and usage; choose another');
  const key = newKey(deps.random);
  const digest = keyDigestHex(key);
  if (options.json === true) {
    write(JSON.stringify({ name, key, key_sha256: digest }) + '\n');
    return ExitCode.ok;
  }
  const lines = [
    `key         ${key}`,
    `key_sha256  ${digest}`,
    '',
    `Give the key to the client "${name}" (it is shown only once); put only its digest in llmserve.yaml (or a keys_file):`,
    '',
    ...keyEntryYaml(name, digest).map((l) => `  ${l}`),
    '',
  ];
  write(lines.join('\n'));
  return ExitCode.ok;
}
