#!/usr/bin/env node
// Entry point. `check` runs every few seconds in probe scripts, so it takes a lean path: dist/lean/check.js, one
// bundled file without the CLI framework, colours or process library (docs/performance-check.md). Every other
// command, and `check --help` or a `check` command line the lean parser does not take, runs the full CLI.
const argv = process.argv.slice(2);
if (argv[0] === 'check') {
  // Without the bundle (a plain `tsc` build), the same code runs unbundled from dist/check/main.js.
  const lean = await import('../dist/lean/check.js').catch((err) => {
    if (err?.code === 'ERR_MODULE_NOT_FOUND') return import('../dist/check/main.js');
    throw err;
  });
  const code = await lean.checkMain(argv.slice(1));
  if (code !== null) process.exit(code);
}
const { main } = await import('../dist/main.js');
main(argv);
