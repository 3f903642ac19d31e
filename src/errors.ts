// The one error type of llmserve: a stable code for scripts, an exit code for the one place that exits.

/** Exit codes, documented in the README. */
export const ExitCode = {
  ok: 0,
  /** Runtime failure: the backend died and could not be restarted, health was lost, or a check failed. */
  runtime: 1,
  /** Bad usage or configuration: nothing was started. */
  usage: 2,
  /** Start-up failed: the backend exited or timed out while starting. */
  startup: 3,
} as const;

/** One of the documented exit codes. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Stable machine-readable codes; scripts may match on them. */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG'
  | 'NO_GPU'
  | 'GPU_QUERY'
  | 'PORT_IN_USE'
  | 'PROBE_DIR'
  | 'MODEL_PATH'
  | 'TLS'
  | 'STARTUP_FAILED'
  | 'STARTUP_TIMEOUT'
  | 'RUNTIME'
  | 'CHECK_FAILED'
  | 'PROBLEMS'
  | 'USAGE_STORE'
  /** A command's output could not be written (stdout on a full disk). */
  | 'OUTPUT';

const defaultExit: Record<ErrorCode, ExitCodeValue> = {
  USAGE: ExitCode.usage,
  CONFIG: ExitCode.usage,
  NO_GPU: ExitCode.usage,
  GPU_QUERY: ExitCode.usage,
  PORT_IN_USE: ExitCode.usage,
  PROBE_DIR: ExitCode.usage,
  MODEL_PATH: ExitCode.usage,
  TLS: ExitCode.usage,
  STARTUP_FAILED: ExitCode.startup,
  STARTUP_TIMEOUT: ExitCode.startup,
  RUNTIME: ExitCode.runtime,
  CHECK_FAILED: ExitCode.runtime,
  PROBLEMS: ExitCode.runtime,
  USAGE_STORE: ExitCode.runtime,
  OUTPUT: ExitCode.runtime,
};

/** An expected failure: printed as one clear message (plus optional detail lines), never as a stack trace. */
export class LlmserveError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  /** Extra lines printed after the message (for example vLLM's last log lines). */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: { exitCode?: ExitCodeValue; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LlmserveError';
    this.code = code;
    this.exitCode = options.exitCode ?? defaultExit[code];
    this.details = options.details ?? [];
  }
}

/** Shorthand for the most common case: a configuration error (exit 2). */
export function configError(message: string): LlmserveError {
  return new LlmserveError('CONFIG', message);
}

/** Shorthand for a command-line usage error (exit 2). */
export function usageError(message: string): LlmserveError {
  return new LlmserveError('USAGE', message);
}
