// Keep keys out of everything `probe` prints: key names only, secret-looking variables and known key values masked.
import type { Config } from '../config/types.js';
import type { RedactedConfig } from './types.js';

/** What stands in for a key or secret in probe's report. */
export const REDACTED = '[redacted]';

/**
 * Variable names whose values are treated as secrets: HF_TOKEN, OPENAI_API_KEY, ..., and the connection strings and
 * webhooks a LiteLLM config keeps in `environment_variables` (SLACK_WEBHOOK_URL, SENTRY_DSN: the URL is the secret).
 */
const SECRET_NAME = /(TOKEN|KEY|SECRET|PASSW(OR)?D|PWD|CREDENTIAL|AUTH|WEBHOOK|DSN)/i;

/** The password of a URL's user info (`postgresql://user:PASSWORD@host/db`: DATABASE_URL, REDIS_URL). */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)(@)/gi;

/** A value with the password of any URL in it masked, and every known secret. */
function redactValue(value: string, secrets: readonly string[]): string {
  return redactText(value, secrets).replace(URL_PASSWORD, `$1${REDACTED}$3`);
}

/** Replaces every known secret value in a text (longest first, so a key containing another is masked whole). */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  const sorted = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  for (const secret of sorted) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/** An environment map with secret-looking values (and known keys) masked. */
export function redactEnv(env: Readonly<Record<string, string>>, secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) out[name] = SECRET_NAME.test(name) ? REDACTED : redactValue(value, secrets);
  return out;
}

/** The resolved configuration with every key replaced by its name and `[redacted]`. */
export function redactConfig(config: Config): RedactedConfig {
  const secrets = config.secrets.values;
  const text = (s: string) => redactText(s, secrets);
  return {
    file: config.configFile,
    format: config.configFormat,
    model: config.model,
    servedModelName: config.servedModelName,
    vllm: {
      command: config.vllm.command.map(text),
      port: config.vllm.port,
      tensorParallelSize: config.vllm.tensorParallelSize,
      args: config.vllm.args.map(text),
      env: redactEnv(config.vllm.env, secrets),
    },
    proxy: {
      host: config.proxy.host,
      port: config.proxy.port,
      auth: config.proxy.auth,
      keys: config.proxy.keys.map((k) => ({ name: k.name, kind: k.digestOnly ? 'key_sha256' : 'key', value: REDACTED })),
      keysFile: config.proxy.keysFile,
      routes: [...config.proxy.routes],
      modelAliases: { ...config.proxy.modelAliases },
      maxBodyBytes: config.proxy.maxBodyBytes,
      firstByteTimeout: config.proxy.firstByteTimeout,
      headersTimeout: config.proxy.headersTimeout,
      bodyTimeout: config.proxy.bodyTimeout,
      keepAliveTimeout: config.proxy.keepAliveTimeout,
      tls: config.proxy.tls ? { cert: config.proxy.tls.cert, key: config.proxy.tls.key } : null,
      workers: config.proxy.workers,
    },
    probes: { dir: config.probes.dir, explicit: config.probes.dirExplicit, interval: config.probes.interval },
    timeouts: { startup: config.timeouts.startup, stop: config.timeouts.stop, stall: config.timeouts.stall, engineStall: config.timeouts.engineStall },
    drain: { ...config.drain },
    restart: { ...config.restart },
    log: { format: config.log.format },
    environment: redactEnv(config.environment, secrets),
    notes: config.notes.map(text),
  };
}
