// How vLLM's argparse reads a flag: `--name value` or `--name=value`, `_` for `-` in the name, and any unambiguous
// prefix of a long flag (allow_abbrev is on in vLLM's CLI), so that llmserve reads vLLM's arguments as vLLM will.

/** An argument split as argparse splits it: the flag's name (`_` read as `-`) and its `=value`, if any. */
export function argparseArg(arg: string): { name: string; inline: string | undefined } {
  const [raw = '', inline] = arg.split(/=(.*)/s);
  return { name: raw.replace(/_/g, '-'), inline };
}

/**
 * True when `name` (from argparseArg) spells `flag`: the flag itself or a prefix of it at least as long as
 * `shortest`, the shortest prefix that no other vLLM flag shares (argparse refuses an ambiguous one).
 */
export function spellsFlag(name: string, flag: string, shortest: string): boolean {
  return name.length >= shortest.length && flag.startsWith(name);
}
