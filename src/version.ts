// llmserve's own version: defined at build time in the single-file bundle, else read once from package.json.
import { readFileSync } from 'node:fs';

// Replaced by a string literal by scripts/build-single.mjs (esbuild `define`); undeclared in a tsc build.
declare const __LLMSERVE_VERSION__: string | undefined;

/** The package version ("unknown" when neither the bundle defines it nor package.json is beside the build). */
export const version: string = (() => {
  if (typeof __LLMSERVE_VERSION__ === 'string') return __LLMSERVE_VERSION__;
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
