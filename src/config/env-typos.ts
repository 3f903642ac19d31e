// LLMSERVE_* variables that llmserve does not read but that look like one it does: a likely typo, said as a note.
import { didYouMean } from './did-you-mean.js';

const PREFIX = 'LLMSERVE_';

/**
 * Notes for set LLMSERVE_* variables that are a likely typo of `known` ones that are not set. Why only then: a typo
 * (`LLMSERVE_PROBEDIR`) is silently ignored, and the setting falls back to its default (/etc/probe); a name of the
 * user's own (`LLMSERVE_TEAM_KEY` for an os.environ/ reference) is not close to any, or its look-alike is set too.
 * `referenced` are the names the config files read (`os.environ/LLMSERVE_MASTER_KEY2`): read, so never a typo.
 */
export function envTypoNotes(env: NodeJS.ProcessEnv, known: readonly string[], referenced: readonly string[] = []): string[] {
  const knownSet = new Set([...known, ...referenced]);
  const unset = known.filter((name) => env[name] === undefined || env[name] === '').map((name) => name.slice(PREFIX.length));
  const notes: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(PREFIX) || knownSet.has(name) || name.startsWith(`${PREFIX}TEST_`)) continue;
    const guess = didYouMean(name.slice(PREFIX.length), unset);
    if (guess !== undefined) notes.push(`environment variable ${name} is not one llmserve reads (did you mean ${PREFIX}${guess}?); it is ignored`);
  }
  return notes;
}
