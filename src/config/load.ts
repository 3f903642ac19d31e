// loadConfig: locate and read the file, parse its format, then resolve precedence into one Config.
import { readFile as fsReadFile } from 'node:fs/promises';
import os from 'node:os';
import { configError } from '../errors.js';
import type { CliOptions, Config } from './types.js';
import { checkCommandSecrets, checkExtraArgs } from './extra-args.js';
import type { FileSettings } from './file-settings.js';
import { readKeysFile } from './keys-file.js';
import { checkVllmConfigFile } from './vllm-config-file.js';
import { isLiteLLMConfig, parseLiteLLMConfig } from './litellm.js';
import { configFileExists, locateConfig, readConfigText } from './locate.js';
import { envValue, FLAGS, resolveConfig } from './resolve.js';
import { parseLlmserveConfig } from './schema.js';
import { at, isMap, kindOf } from './values.js';
import { parseYaml } from './yaml.js';
import { withIncludes, type Included } from './include.js';
import { workingDir } from '../util/cwd.js';

/** Side effects of loading the configuration; each has a real default. */
export interface LoadConfigDeps {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  readFile?: (p: string) => Promise<string>;
  exists?: (p: string) => Promise<boolean>;
  /** CPUs this process may use (`proxy.workers: auto`); default os.availableParallelism(). */
  cores?: number;
}


/** Parses config file text (either format) into FileSettings. */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv): FileSettings {
  return parseConfigDoc({ doc: parseYaml(text, file), origins: {}, notes: [] }, file, env, []);
}

/** Parses config file text with the files its `include:` names (LiteLLM's), read through `readFile`. */
export async function parseConfigFileText(text: string, file: string, env: NodeJS.ProcessEnv, readFile: (p: string) => Promise<string> = (p) => fsReadFile(p, 'utf8'), skipped: readonly string[] = []): Promise<FileSettings> {
  return parseConfigDoc(await withIncludes(parseYaml(text, file), file, readFile), file, env, skipped);
}

/** The sections of the proxy's settings (llmserve's and LiteLLM's), which a --role worker leaves unread. */
const PROXY_SECTIONS: readonly string[] = ['proxy', 'general_settings'];

function parseConfigDoc({ doc, origins, notes }: Included, file: string, env: NodeJS.ProcessEnv, skipped: readonly string[]): FileSettings {
  if (doc === null || doc === undefined) throw configError(`${file}: the config file is empty; expected a mapping of settings (model:, proxy:, ...)`);
  if (!isMap(doc)) throw configError(`${file}: expected a mapping of settings at the top level (model:, proxy:, ...), got ${kindOf(doc)}`);
  const read = skipped.length === 0 ? doc : Object.fromEntries(Object.entries(doc).filter(([key]) => !skipped.includes(key)));
  if (!isLiteLLMConfig(read)) return parseLlmserveConfig(read, file, env);
  const settings = parseLiteLLMConfig(read, file, env, origins);
  settings.notes.unshift(...notes);
  return settings;
}

/** Builds the one Config from flags, environment (LLMSERVE_*), the config file and defaults. */
export async function loadConfig(cli: CliOptions, deps: LoadConfigDeps = {}): Promise<Config> {
  const env = deps.env ?? process.env;
  const cwd = deps.cwd ?? workingDir();
  const readFile = deps.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  const located = await locateConfig(cli, env, cwd, deps.exists ?? configFileExists);

  let file: FileSettings | null = null;
  // A --role worker runs only `ray start`: the proxy's settings (keys read from variables that only the head's pod
  // has, a keys file) are the head's business, so a worker sharing the head's config file neither reads nor checks them.
  const worker = (cli.role ?? envValue(env, FLAGS.role[1])) === 'worker';
  if (located) {
    const text = await readConfigText(located, readFile);
    file = await parseConfigFileText(text, located.path, env, readFile, worker ? PROXY_SECTIONS : []);
    checkExtraArgs(file.vllm.args, at(located.path, 'vllm.args'));
    if (file.vllm.command !== undefined) checkCommandSecrets(file.vllm.command, at(located.path, 'vllm.command'));
    // Each model's own args too: they follow llmserve's `--host 127.0.0.1` on vLLM's command line, where the last wins.
    for (const [i, m] of (file.models ?? []).entries()) checkExtraArgs(m.args, at(located.path, `models[${i}].vllm.args`), `models[${i}]`);
    await checkVllmConfigFile(file.vllm.args, at(located.path, 'vllm.args'), cwd, readFile);
    for (const [i, m] of (file.models ?? []).entries()) await checkVllmConfigFile(m.args, at(located.path, `models[${i}].vllm.args`), cwd, readFile);
  }
  checkExtraArgs(cli.extraArgs ?? [], 'vLLM arguments after --');
  await checkVllmConfigFile(cli.extraArgs ?? [], 'vLLM arguments after --', cwd, readFile);
  const keysFromFile = file?.proxy.keysFile !== undefined ? await readKeysFile(file.proxy.keysFile, { env, readFile, namedIn: file.file }) : null;
  return resolveConfig({ cli, env, file, keysFromFile, cores: deps.cores ?? os.availableParallelism() });
}
