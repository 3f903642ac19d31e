// Commander wiring only: parse the command line, call the command, return its exit code.
import { Command, CommanderError, Option } from 'commander';
import { usageError } from './errors.js';
import type { CliOptions } from './config/types.js';
import { version } from './version.js';

/** Adds the configuration flags shared by start, probe and check. */
function configOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'config file: llmserve YAML or an unchanged LiteLLM config (default ./llmserve.yaml when present)')
    .option('--model <path>', 'model directory or hub id')
    .option('--served-model-name <name>', 'public model name (default: the config\'s model name, else the last path component)')
    .option('--port <n>', 'public port of the proxy (default 8080, or 80 when OPENBAYES_SERVING_PRODUCTION is set)')
    .option('--host <addr>', 'public bind address of the proxy (default 0.0.0.0)')
    .option('--backend-port <n>', 'vLLM port on 127.0.0.1 (default 3000)')
    .option('--tensor-parallel-size <n|auto>', 'tensor-parallel size (default auto: the visible GPUs, fitted to the attention heads)')
    .option('--probe-dir <dir>', 'directory of the not-ready / not-healthy probe files (default /etc/probe)')
    .option('--health-interval <seconds>', 'seconds between health checks (default 10; fractions allowed)')
    .option('--startup-timeout <seconds>', 'give up when vLLM is not ready after this long (default 1800)')
    .option('--stop-timeout <seconds>', 'grace between SIGTERM and SIGKILL when stopping a child (default 30)')
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']));
}

/** Pulls the CLI options object out of commander's parsed options. */
function cliOptions(opts: Record<string, unknown>, extraArgs: string[] | undefined): CliOptions {
  const pick = (k: string) => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  const out: CliOptions = {};
  const keys = ['config', 'model', 'servedModelName', 'port', 'host', 'backendPort', 'tensorParallelSize', 'probeDir', 'healthInterval', 'startupTimeout', 'stopTimeout', 'logFormat'] as const;
  for (const k of keys) {
    const v = pick(k);
    if (v !== undefined) out[k] = v;
  }
  if (extraArgs !== undefined) out.extraArgs = extraArgs;
  return out;
}

/** Parses argv (without node and script) and runs the command; resolves to the exit code. */
export async function runCli(argv: string[]): Promise<number> {
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

  configOptions(
    program
      .command('start')
      .description('run vLLM on a loopback port behind the authenticating proxy, with probe files and a health loop, until SIGTERM')
      .usage('[options] [-- EXTRA VLLM ARGS...]'),
  )
    .option('--verbose', 'show debug lines')
    .action(async (opts: Record<string, unknown>) => {
      const { runStart } = await import('./commands/start.js');
      code = await runStart({ ...cliOptions(opts, extra), verbose: opts.verbose === true });
    });

  configOptions(
    program
      .command('probe')
      .description('show what start would do (GPUs, tensor-parallel size, ports, vLLM command line, problems) without starting anything')
      .usage('[options] [-- EXTRA VLLM ARGS...]'),
  )
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
      // Help and --version end with code 0; every parsing error is a usage error (exit 2), already printed.
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    }
    throw err;
  }
  return code;
}
