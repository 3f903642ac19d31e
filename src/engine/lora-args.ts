// The LoRA adapters vLLM serves from its arguments (`--lora-modules`): names vLLM answers for besides the model.
import { argparseArg, spellsFlag } from './argparse-spelling.js';

const FLAG = '--lora-modules';
// The shortest unique abbreviation argparse accepts: `--lora-` also starts --lora-dtype and the other --lora flags.
const SHORTEST = '--lora-m';

/**
 * The adapter names of every `--lora-modules` in vLLM's arguments (any spelling argparse accepts: `=value`,
 * underscores, an abbreviation). Each value is `name=path` or a JSON object with a `name` (vLLM's two forms); the
 * flag takes values up to the next option.
 */
export function loraModuleNames(args: readonly string[]): string[] {
  const names: string[] = [];
  const add = (value: string): void => {
    const text = value.trim();
    if (text.startsWith('{')) {
      try {
        const name = (JSON.parse(text) as { name?: unknown }).name;
        if (typeof name === 'string' && name !== '') names.push(name);
      } catch {
        // vLLM refuses it at start: nothing to serve.
      }
      return;
    }
    const eq = text.indexOf('=');
    if (eq > 0) names.push(text.slice(0, eq));
  };
  for (let i = 0; i < args.length; i++) {
    const { name, inline } = argparseArg(args[i]!);
    if (!spellsFlag(name, FLAG, SHORTEST)) continue;
    if (inline !== undefined) {
      add(inline);
      continue;
    }
    while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) add(args[++i]!);
  }
  return names;
}

/**
 * The proxy's aliases, plus each LoRA adapter's name as itself, when aliases exist: with aliases the proxy answers an
 * unknown model's 404 itself, and an adapter is no unknown model. Without aliases every name goes to vLLM anyway.
 */
export function withLoraNames(aliases: Readonly<Record<string, string>>, loras: readonly string[]): Record<string, string> {
  if (Object.keys(aliases).length === 0) return { ...aliases };
  return { ...Object.fromEntries(loras.map((name) => [name, name])), ...aliases };
}
