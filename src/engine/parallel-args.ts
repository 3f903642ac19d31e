// The parallelism a user asks of vLLM in `vllm.args` besides the tensor-parallel size llmserve chooses.

/** Data-parallel and pipeline-parallel sizes found in vLLM's extra arguments (1 when not given). */
export interface OtherParallelism {
  dataParallel: number;
  pipelineParallel: number;
}

type Counted = 'dp' | 'dpl' | 'pp';

const VALUE_FLAGS: Record<string, Counted> = {
  '--data-parallel-size': 'dp',
  '-dp': 'dp',
  '--data-parallel-size-local': 'dpl',
  '-dpl': 'dpl',
  '--pipeline-parallel-size': 'pp',
  '-pp': 'pp',
};

// Data parallelism spread over several nodes or processes: without -dpl, how many ranks run here is not known.
const ELSEWHERE_FLAGS: ReadonlySet<string> = new Set(['--data-parallel-rank', '-dpn', '--data-parallel-start-rank', '-dpr', '--data-parallel-address', '-dpa', '--headless']);

/** Every long flag name counted here. */
const LONG_NAMES: readonly string[] = [...Object.keys(VALUE_FLAGS), ...ELSEWHERE_FLAGS].filter((f) => f.startsWith('--'));

/**
 * The counted flag a long name abbreviates (`--pipeline-parallel` for `--pipeline-parallel-size`), or the name itself.
 * Why: vLLM's argparse keeps allow_abbrev on (see config/extra-args.ts), so it runs `--pipe 2` as `-pp 2`. A prefix
 * of several counted flags is one vLLM refuses as ambiguous, and so is one of a counted flag and another of vLLM's.
 */
function unabbreviated(name: string): string {
  if (!name.startsWith('--') || name.length < 3 || VALUE_FLAGS[name] !== undefined || ELSEWHERE_FLAGS.has(name)) return name;
  const matches = LONG_NAMES.filter((f) => f.startsWith(name));
  return matches.length === 1 ? matches[0]! : name;
}

/**
 * The data-parallel ranks on this node and the pipeline stages, from vLLM's arguments (`-dp N`, `-dpl N`, `-pp N`,
 * long forms, `--flag=N`, `_` for `-` in long names and abbreviations of them, as vLLM allows). Why: each rank and stage takes its own
 * tensor-parallel group of GPUs, so `auto` must split the GPUs among them instead of giving every rank all of them.
 * Ranks here are `-dpl` when given; with data parallelism across nodes or one rank per process (`-dpn`, `-dpr`,
 * `-dpa`, `--headless`) and no `-dpl`, 1, as before llmserve counted them. A value that is not a positive integer is left for vLLM to refuse.
 */
export function otherParallelism(args: readonly string[]): OtherParallelism {
  const n: Record<Counted, number | null> = { dp: null, dpl: null, pp: null };
  let elsewhere = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const eq = arg.indexOf('=');
    const raw = eq >= 0 ? arg.slice(0, eq) : arg;
    // vLLM accepts `_` for `-` in long names (--pipeline_parallel_size; vllm/utils/argparse_utils.py).
    const name = unabbreviated(raw.startsWith('--') ? `--${raw.slice(2).replace(/_/g, '-')}` : raw);
    if (ELSEWHERE_FLAGS.has(name)) elsewhere = true;
    const key = VALUE_FLAGS[name];
    if (key === undefined) continue;
    const value = Number(eq >= 0 ? arg.slice(eq + 1) : args[++i]);
    if (Number.isInteger(value) && value > 0) n[key] = value;
  }
  const dataParallel = n.dpl ?? (elsewhere ? 1 : (n.dp ?? 1));
  return { dataParallel, pipelineParallel: n.pp ?? 1 };
}
