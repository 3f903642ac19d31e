// What a config file says, validated but not yet merged with flags, environment and defaults.
import type { DrainConfig, RestartConfig, TlsConfig } from './types.js';
import { noKeys, type LoadedKeys } from './keys.js';
import type { KeyPolicy } from './key-policy.js';
import type { UsageFileSettings } from './usage-settings.js';
import type { ModelFileEntry } from './models.js';

/** One config file's settings; undefined = the file does not set it. */
export interface FileSettings {
  file: string;
  format: 'llmserve' | 'litellm';
  /** Where a master key goes when not `file`: the included file whose general_settings replaces the parent's. */
  masterKeyFile?: string;
  model?: string;
  servedModelName?: string;
  /** A LiteLLM `model_name` with `*` (a wildcard route), served under the name derived from the model instead. */
  wildcardModelName?: { name: string; where: string };
  vllm: {
    command?: string[];
    port?: number;
    /** The key path `port` was read from, for errors about it: `vllm.port`, or a LiteLLM file's api_base. */
    portKey?: string;
    tensorParallelSize?: number | 'auto';
    args: string[];
    env: Record<string, string>;
    accessLog?: boolean;
  };
  proxy: {
    port?: number | 'auto';
    host?: string;
    auth?: boolean;
    /** The master key as written (os.environ/ read), and the env name it came from. */
    masterKey?: { value: string; envName?: string; origin: string };
    /** `proxy.keys`. */
    keys: LoadedKeys;
    /** `proxy.keys_file`, absolute. */
    keysFile?: string;
    routes?: string[];
    modelAliases: Record<string, string>;
    maxBodyBytes?: number;
    firstByteTimeout?: number;
    headersTimeout?: number;
    bodyTimeout?: number;
    keepAliveTimeout?: number;
    tls?: TlsConfig | null;
    logHealth?: boolean;
    /** `proxy.master_limits`. */
    masterPolicy?: KeyPolicy;
    metricsPort?: number;
    workers?: number | 'auto';
  };
  probes: { dir?: string; interval?: number; require?: 'all' | 'any' };
  /** `models:` (several models on one node); absent = the single-model form. */
  models?: ModelFileEntry[];
  ray: { command?: string[] };
  startupTimeout?: number;
  stopTimeout?: number;
  stallTimeout?: number;
  engineStallTimeout?: number;
  restart?: RestartConfig;
  drain?: DrainConfig;
  usage?: UsageFileSettings;
  logFormat?: 'text' | 'json';
  environment: Record<string, string>;
  /** Where `environment` is written when not `file`: the included file whose environment_variables replaces the parent's. */
  environmentFile?: string;
  extra: Record<string, unknown>;
  /** The NAMEs of the file's `os.environ/NAME` values: variables llmserve reads through the file. */
  envRefs: string[];
  notes: string[];
  /** Ignored LiteLLM keys that look like a misspelt key llmserve reads, each with its "did you mean". */
  misspelt?: string[];
}

/** A FileSettings that sets nothing. */
export function emptyFileSettings(file: string, format: FileSettings['format']): FileSettings {
  return {
    file,
    format,
    vllm: { args: [], env: {} },
    proxy: { keys: noKeys(), modelAliases: {} },
    probes: {},
    ray: {},
    environment: {},
    extra: {},
    envRefs: [],
    notes: [],
  };
}
