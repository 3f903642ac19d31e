// Builds dist/llmserve.mjs: the whole CLI and its pure-JavaScript dependencies in one file that runs with a bare
// `node` and no node_modules. The version and templates/llmserve.yaml are built in (see src/version.ts and
// src/commands/init.ts); the proxy child re-runs this same file (`node dist/llmserve.mjs proxy`).
import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const template = readFileSync(path.join(root, 'templates', 'llmserve.yaml'), 'utf8');
const outfile = path.join(root, 'dist', 'llmserve.mjs');
// bin/early-signals.js, run first as in bin/llmserve.js: a signal while the bundle loads is kept for start.
const earlySignals = readFileSync(path.join(root, 'bin', 'early-signals.js'), 'utf8');
const recordEarly = `if (process.argv[2] === 'start') (() => { const module = { exports: {} }; ${earlySignals}\n; module.exports.recordEarlySignals(process); })();`;

await build({
  stdin: {
    contents: "import { main } from './src/main.ts';\nmain(process.argv.slice(2));\n",
    resolveDir: root,
    sourcefile: 'llmserve-single-entry.ts',
    loader: 'ts',
  },
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
  define: {
    __LLMSERVE_VERSION__: JSON.stringify(pkg.version),
    __LLMSERVE_TEMPLATE__: JSON.stringify(template),
  },
  // macOS-only optional sensors that systeminformation requires inside try/catch: absent is fine.
  external: ['osx-temperature-sensor', 'macos-temperature-sensor'],
  banner: {
    // Bundled CommonJS dependencies (commander, systeminformation) call require() for Node's built-ins.
    js: `#!/usr/bin/env node\nimport { createRequire as __llmserveCreateRequire } from 'node:module';\nconst require = __llmserveCreateRequire(import.meta.url);\n${recordEarly}`,
  },
});
chmodSync(outfile, 0o755); // runnable as `./llmserve.mjs` or through a symlink named llmserve
process.stdout.write(`built ${path.relative(root, outfile)} (llmserve ${pkg.version})\n`);
