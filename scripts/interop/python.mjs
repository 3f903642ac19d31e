// The Python the interop checks run their vLLM-like app with.
import { spawnSync } from 'node:child_process';

/** The first of `python3` (PATH) and Debian's `/usr/bin/python3` that can import every module named; null: none. */
export function findPython(modules) {
  const code = `import ${modules.join(', ')}`;
  return ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', code], { stdio: 'ignore' }).status === 0) ?? null;
}
