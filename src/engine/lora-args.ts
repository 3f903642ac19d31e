// The LoRA adapters vLLM serves from its arguments (`--lora-modules`): names vLLM answers for besides the model.
import { argparseArg, spellsFlag } from './argparse-spelling.js';

const FLAG = '--lora-modules';
// The shortest unique abbreviation argparse accepts: `--lora-` also starts --lora-dtype and the other --lora flags.
const SHORTEST = '--lora-m';

/**
 * The adapter names vLLM serves from its arguments: those of the last `--lora-modules` (any spelling argparse accepts:
 * `=value`, underscores, an abbreviation). Why the last only: vLLM's LoRAParserAction sets the list each time the flag
 * appears, so an earlier one (the shared `vllm.args` before an entry's own) is dropped. Each value is `name=path` or a
 * JSON object with a `name` (vLLM's two forms); the flag takes values up to the next option.
 */
export function loraModuleNames(args: readonly string[]): string[] {
  return loraModuleLists(args).at(-1) ?? [];
}

/**
 * `--lora-modules` given more than once (vLLM serves the last one's adapters only), said with the names dropped; null
 * when it is not.
 */
export function droppedLoraWarning(args: readonly string[]): string | null {
  const lists = loraModuleLists(args);
  if (lists.length < 2) return null;
  const kept = new Set(lists.at(-1));
  const dropped = [...new Set(lists.slice(0, -1).flat())].filter((name) => !kept.has(name));
  const which = dropped.length === 0 ? '' : `: ${dropped.map((n) => `"${n}"`).join(', ')} will not be served`;
  return `--lora-modules appears ${lists.length} times in vLLM's arguments, and vLLM keeps only the last one's adapters${which}; list every adapter after a single --lora-modules`;
}

/**
 * Public names claimed twice with several models: a LoRA adapter named like another model's served name, an alias,
 * or another model's adapter (each request can go to one vLLM only, and the first would win unseen). One message each.
 */
export function loraNameClashes(models: readonly { name: string; loras: readonly string[] }[], aliases: Readonly<Record<string, string>>): string[] {
  // Each public name's first claim: what it is, and the model it reaches (none for an alias: it is checked elsewhere).
  const owner = new Map<string, { what: string; model: string | null }>();
  for (const m of models) owner.set(m.name, { what: `the served name of model "${m.name}"`, model: m.name });
  for (const alias of Object.keys(aliases)) if (!owner.has(alias)) owner.set(alias, { what: 'an alias (proxy.model_aliases)', model: null });
  const clashes: string[] = [];
  for (const m of models) {
    for (const lora of new Set(m.loras)) {
      const taken = owner.get(lora);
      if (taken === undefined) owner.set(lora, { what: `a LoRA adapter of model "${m.name}"`, model: m.name });
      // An adapter named as its own model is that model's name already: no clash.
      else if (!(taken.model === m.name && lora === m.name)) clashes.push(`model "${m.name}": its LoRA adapter "${lora}" (--lora-modules) is also ${taken.what}`);
    }
  }
  return clashes;
}

/** The adapter names of each `--lora-modules` in `args`, one list per occurrence. */
function loraModuleLists(args: readonly string[]): string[][] {
  const lists: string[][] = [];
  let names: string[] = [];
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
    lists.push((names = []));
    if (inline !== undefined) {
      add(inline);
      continue;
    }
    while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) add(args[++i]!);
  }
  return lists;
}

/**
 * The proxy's aliases, plus each LoRA adapter's name as itself, when aliases exist: with aliases the proxy answers an
 * unknown model's 404 itself, and an adapter is no unknown model. Without aliases every name goes to vLLM anyway.
 */
export function withLoraNames(aliases: Readonly<Record<string, string>>, loras: readonly string[]): Record<string, string> {
  if (Object.keys(aliases).length === 0) return { ...aliases };
  return { ...Object.fromEntries(loras.map((name) => [name, name])), ...aliases };
}
