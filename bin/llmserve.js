#!/usr/bin/env node
// Entry point. CommonJS on purpose (bin/package.json): Node starts an ES module about 5 ms slower than a script,
// and `check` runs every few seconds in probe scripts, where that was a third of its own cost
// (docs/performance-check.md). `check` takes a lean path: dist/lean/check.cjs, one bundled file without the CLI
// framework, colours or process library. Every other command, and `check --help` or a `check` command line the
// lean parser does not take, runs the full CLI (ES modules, loaded with import()).
'use strict';
const argv = process.argv.slice(2);
// Before anything is loaded: a signal while start's modules load is kept for start (see early-signals.js).
if (argv[0] === 'start') require('./early-signals.js').recordEarlySignals(process);
const fullCli = () => import('../dist/main.js').then((cli) => cli.main(argv));

/** The bundled check, or the same code unbundled from a plain `tsc` build (no bundle). */
function leanCheck() {
  try {
    return Promise.resolve(require('../dist/lean/check.cjs'));
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') return import('../dist/check/main.js');
    throw err;
  }
}

if (argv[0] === 'check') {
  leanCheck()
    .then((lean) => lean.checkMain(argv.slice(1)))
    .then((code) => (code === null ? fullCli() : process.exit(code)));
} else {
  fullCli();
}
