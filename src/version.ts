// llmserve's own version, read once from package.json.
import { readFileSync } from 'node:fs';

/** The package version (falls back to "unknown" when package.json is not beside the build, as in a bundle). */
export const version: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
