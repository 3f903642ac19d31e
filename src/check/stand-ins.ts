// Variables a config file reads with os.environ/NAME that are unset where `check` runs: a second shell, a cron job,
// a Ray worker's pod (README: a worker needs none of the head's key variables).
import { randomBytes } from 'node:crypto';

const REFERENCE = /os\.environ\/\s*([A-Za-z_][A-Za-z0-9_]*)/g;

/** A YAML comment: `#` at a line's start or after white space, to the line's end (init's template has examples there). */
const COMMENT = /(^|\s)#.*$/;

/** Names the text reads as os.environ/NAME (outside comments) that `env` leaves unset or empty, each once, in order. */
export function unsetReferences(text: string, env: NodeJS.ProcessEnv): string[] {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    for (const match of line.replace(COMMENT, '').matchAll(REFERENCE)) if ((env[match[1]!] ?? '') === '') names.add(match[1]!);
  }
  return [...names];
}

/**
 * A distinct stand-in value per name, so that the rest of the file can be read (ports, probe directory, models).
 * Why random: check must recognise them and drop every key that holds one; none is ever sent to the proxy.
 */
export function standInValues(names: readonly string[]): Record<string, string> {
  const tag = randomBytes(8).toString('hex');
  return Object.fromEntries(names.map((name) => [name, `llmserve-check-unset-${name}-${tag}`]));
}
