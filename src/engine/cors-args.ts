// vLLM's CORS policy as its arguments set it: the origins its CORS middleware allows (`--allowed-origins`).
import { argparseArg, spellsFlag } from './argparse-spelling.js';

const FLAG = '--allowed-origins';
// The shortest unique abbreviation argparse accepts: `--allowed-` also starts --allowed-methods, -headers, ...
const SHORTEST = '--allowed-o';

/**
 * The origins vLLM allows, from the last `--allowed-origins` in its arguments (any spelling argparse accepts:
 * `=value`, underscores, an abbreviation); vLLM's default, every origin (`["*"]`), without one. Null when the value
 * is no JSON list of strings, which vLLM itself refuses at start.
 */
export function allowedOrigins(args: readonly string[]): string[] | null {
  let value: string | undefined = '["*"]';
  args.forEach((arg, i) => {
    const { name, inline } = argparseArg(arg);
    if (spellsFlag(name, FLAG, SHORTEST)) value = inline ?? args[i + 1];
  });
  try {
    const list: unknown = JSON.parse(value ?? '');
    return Array.isArray(list) && list.every((o) => typeof o === 'string') ? list : null;
  } catch {
    return null;
  }
}
