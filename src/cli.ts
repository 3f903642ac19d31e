// Commander wiring only: parse the command line, call the command, return its exit code.
import { Command, CommanderError, Option } from 'commander';
import { LlmserveError, usageError } from './errors.js';
import { createErrorReporter, createLogger, type ErrorReporter } from './log.js';
import type { CliOptions } from './config/types.js';
import { version } from './version.js';
import { vllmOptionHint } from './config/vllm-flag-hint.js';

/** Adds the configuration flags shared by start, probe and check. */
function configOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'config file: llmserve YAML or an unchanged LiteLLM config (default ./llmserve.yaml when present)')
    .option('--model <path>', 'model directory or hub id')
    .option('--served-model-name <name>', 'public model name (default: the config\'s model name, else the last path component)')
    .option('--port <n>', 'public port of the proxy (default 8080, or 80 when OPENBAYES_SERVING_PRODUCTION is set)')
    .option('--host <addr>', 'public bind address of the proxy (default 0.0.0.0)')
    .option('--backend-port <n>', 'vLLM port on 127.0.0.1 (default 3000)')
    .option('--tensor-parallel-size <n|auto>', 'tensor-parallel size (default auto: the visible GPUs, fitted to the attention heads; 1 on MIG instances)')
    .option('--probe-dir <dir>', 'directory of the not-ready / not-healthy probe files (default /etc/probe)')
    .option('--health-interval <seconds>', 'seconds between health checks (default 10; fractions allowed)')
    .option('--startup-timeout <seconds>', 'give up when vLLM is not ready after this long (default 1800)')
    .option('--stop-timeout <seconds>', 'grace between SIGTERM and SIGKILL when stopping a child (default 30)')
    .option('--stall-timeout <seconds>', 'give up when vLLM prints nothing for this long while starting (default 600)')
    .option('--engine-stall-timeout <seconds>', 'restart vLLM when requests wait this long on it while it sends nothing and its engine stands still (default 0: off)')
    .option('--drain-delay <seconds>', 'after SIGTERM, keep serving this long before draining (default 0)')
    .option('--drain-timeout <seconds>', 'then wait at most this long for requests in flight (default 30)')
    .addOption(new Option('--restart <policy>', 'restart vLLM and the proxy when they fail (default on-failure)').choices(['on-failure', 'never']))
    // The default in words, not .default(): a default value would beat LLMSERVE_LOG_FORMAT and the file's log_format.
    .addOption(new Option('--log-format <format>', 'log format (default text)').choices(['text', 'json']));
}

/** Adds the multi-node flags of start and probe. */
function clusterOptions(cmd: Command): Command {
  return cmd
    .option('--role <role>', 'multi-node on Ray: "head" (runs ray start --head, waits for --nodes, then vLLM) or "worker" (joins --head); env LLMSERVE_ROLE')
    .option('--nodes <n>', 'with --role head: nodes in the Ray cluster, the head included (2 or more); env LLMSERVE_NODES')
    .option('--head <address>', 'with --role worker: the Ray head to join, HOST[:PORT] (port 6379 if left out); env LLMSERVE_HEAD');
}

/**
 * start and probe: an unknown option is often one of vLLM's, from a vllm.sh (`--gpu-memory-utilization 0.9`): the
 * error says where those go. In JSON mode `write` collects the line with the rest (a detail of the usage error).
 */
function hintVllmFlags(cmd: Command): Command {
  const { outputError = (str: string, write: (s: string) => void) => write(str) } = cmd.configureOutput();
  return cmd.configureOutput({
    outputError: (str, write) => {
      outputError(str, write);
      const option = /unknown option '([^']+)'/.exec(str)?.[1];
      // Not for a misspelt option of llmserve's own (commander suggested it) or another command's (`start --json`):
      // those are no vLLM flags, and putting them after "--" would have vLLM refuse them.
      const ours = cmd.parent?.commands.some((c) => c.options.some((o) => o.long === option?.split('=')[0])) === true;
      if (option !== undefined && !ours && !str.includes('Did you mean')) write(`${vllmOptionHint(cmd.name(), option)}\n`);
    },
  });
}

/** Where start's key and vLLM's own flags come from: the two things a user of a vllm.sh looks for in --help. */
const START_HELP_FOOTER = `
The API key is never a flag (a command line is visible to every process): start reads it from the environment,
  export LLMSERVE_MASTER_KEY=$(openssl rand -hex 32)
or from the config file (proxy.master_key, proxy.keys; a LiteLLM config's general_settings.master_key).
vLLM's own flags go after "--" (llmserve start --model M -- --gpu-memory-utilization 0.9) or in the config's vllm.args.`;

/** Pulls the CLI options object out of commander's parsed options. */
function cliOptions(opts: Record<string, unknown>, extraArgs: string[] | undefined): CliOptions {
  const pick = (k: string) => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  const out: CliOptions = {};
  const keys = ['config', 'model', 'servedModelName', 'port', 'host', 'backendPort', 'tensorParallelSize', 'probeDir', 'healthInterval', 'startupTimeout', 'stopTimeout', 'stallTimeout', 'engineStallTimeout', 'drainDelay', 'drainTimeout', 'restart', 'logFormat', 'role', 'nodes', 'head'] as const;
  for (const k of keys) {
    const v = pick(k);
    if (v !== undefined) out[k] = v;
  }
  if (extraArgs !== undefined) out.extraArgs = extraArgs;
  return out;
}

/** Parses argv (without node and script) and runs the command; resolves to the exit code. */
export async function runCli(argv: string[], errors: ErrorReporter = createErrorReporter(createLogger())): Promise<number> {
  // Everything after the first `--` is passed to vLLM untouched (only `start` and `probe` take it).
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const extra = dashdash >= 0 ? argv.slice(dashdash + 1) : undefined;
  let code = 0;

  const program = new Command('llmserve')
    .description('Serve a vLLM model in production: GPUs, an authenticating OpenAI-compatible proxy, probe files, clean shutdown.')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .allowExcessArguments(false);
  // In JSON mode commander's own stderr text (a usage error, its hint, help after an error) becomes one usage error
  // for main.ts to print as JSON lines; text mode keeps commander's output as it is. Set before the commands copy it.
  const json = errors.logger.format === 'json';
  const written: string[] = [];
  if (json) program.configureOutput({ writeErr: (text) => written.push(text), outputError: () => {} });

  hintVllmFlags(clusterOptions(configOptions(
    program
      .command('start')
      .description('run vLLM on a loopback port behind the authenticating proxy, with probe files and a health loop, until SIGTERM')
      .usage('[options] [-- EXTRA VLLM ARGS...]')
      .addHelpText('after', START_HELP_FOOTER),
  )))
    .option('--verbose', "show vLLM's raw lines under the terminal status line, and debug lines")
    .option('--log-file <file>', 'also append every log line to FILE (env LLMSERVE_LOG_FILE)')
    .action(async (opts: Record<string, unknown>) => {
      const { runStart } = await import('./commands/start.js');
      const fromFlag = typeof opts.logFile === 'string';
      const logFile = fromFlag ? (opts.logFile as string) : process.env.LLMSERVE_LOG_FILE || undefined;
      code = await runStart({ ...cliOptions(opts, extra), verbose: opts.verbose === true, ...(logFile ? { logFile, logFileFrom: fromFlag ? '--log-file' : 'LLMSERVE_LOG_FILE' } : {}), errors });
    });

  hintVllmFlags(clusterOptions(configOptions(
    program
      .command('probe')
      .description('show what start would do (GPUs, tensor-parallel size, ports, vLLM command line, problems) without starting anything')
      .usage('[options] [-- EXTRA VLLM ARGS...]'),
  )))
    .option('--json', 'print one JSON object')
    .action(async (opts: Record<string, unknown>) => {
      const { runProbe } = await import('./commands/probe.js');
      code = await runProbe({ ...cliOptions(opts, extra), json: opts.json === true });
    });

  configOptions(program.command('check').description('one-shot live health check of a running service, for probe scripts'))
    .option('--json', 'print one JSON object')
    .option('--timeout <seconds>', 'per-check timeout in seconds (default 5)')
    .action(async (opts: Record<string, unknown>) => {
      const { runCheck } = await import('./commands/check.js');
      code = await runCheck({ ...cliOptions(opts, undefined), json: opts.json === true, ...(typeof opts.timeout === 'string' ? { timeout: opts.timeout } : {}) });
    });

  program
    .command('init')
    .description('write a commented llmserve.yaml (the original deployment\'s vLLM settings) and print a new master key to export')
    .option('--model <path>', 'model directory or hub id to write into the file (default: an example to edit)')
    .option('--name <name>', 'public model name (served_model_name; default: the last component of the model path)')
    .option('--out <file>', 'file to write', 'llmserve.yaml')
    .option('--force', 'overwrite the file if it exists')
    .action(async (opts: Record<string, unknown>) => {
      const { runInit } = await import('./commands/init.js');
      const str = (k: string) => (typeof opts[k] === 'string' ? { [k]: opts[k] as string } : {});
      code = await runInit({ ...str('model'), ...str('name'), ...str('out'), force: opts.force === true });
    });

  program
    .command('keys')
    .description('API keys for the proxy')
    .command('generate')
    .description('print a new random key and its SHA-256 (key_sha256), with a config entry to paste')
    .option('--name <name>', 'name of the key in logs and in the config entry', 'client')
    .option('--json', 'print one JSON object {name, key, key_sha256}')
    .action(async (opts: Record<string, unknown>) => {
      const { runKeysGenerate } = await import('./commands/keys.js');
      code = await runKeysGenerate({ ...(typeof opts.name === 'string' ? { name: opts.name } : {}), json: opts.json === true });
    });

  program
    .command('usage')
    .description('tokens and requests per key and model, from the usage store the proxy writes')
    .option('--config <file>', 'config file whose usage.dir to read (default ./llmserve.yaml when present; env LLMSERVE_USAGE_DIR overrides)')
    .option('--key <name>', 'only this key (by name)')
    .option('--since <span>', 'period: 24h, 7d, 2w, a date like 2026-05-01, a date-time like 2026-05-01T09:30 (UTC unless it ends in Z or an offset like +02:00), or all', '7d')
    .option('--json', 'print {"rows": [{key, model, requests, prompt_tokens, completion_tokens, errors}]}')
    .action(async (opts: Record<string, unknown>) => {
      const { runUsage } = await import('./commands/usage.js');
      const str = (k: string) => (typeof opts[k] === 'string' ? { [k]: opts[k] as string } : {});
      code = await runUsage({ ...str('config'), ...str('key'), ...str('since'), json: opts.json === true });
    });

  // Internal: the proxy child process. Its settings and keys arrive over IPC, never on argv.
  program.command('proxy', { hidden: true }).action(async () => {
    const { runProxyCommand } = await import('./commands/proxy.js');
    await runProxyCommand();
  });

  const command = own[0];
  if (extra !== undefined && command !== 'start' && command !== 'probe') {
    throw usageError('arguments after "--" are passed to vLLM and only `start` and `probe` accept them');
  }
  try {
    await program.parseAsync(own, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end with code 0; every parsing error is a usage error (exit 2), already printed in text mode.
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (json) throw commanderUsageError(err, written);
      return 2;
    }
    throw err;
  }
  return code;
}

/** A commander parse error as llmserve's usage error (exit 2); what commander wrote after it becomes detail lines. */
function commanderUsageError(err: CommanderError, written: readonly string[]): LlmserveError {
  const details = written.join('').split('\n').filter((line) => line.trim() !== '');
  // Help shown for a missing (sub)command carries no message of its own.
  const message = err.code === 'commander.help' ? 'missing or unknown command' : err.message.replace(/^error: /, '');
  return new LlmserveError('USAGE', message, { details });
}
