#!/usr/bin/env node
// Entry point. `check` runs every few seconds in probe scripts, so it takes a lean path (dist/check/main.js:
// no CLI framework, no colours, no process library); every other command, and `check --help`, runs the full CLI.
const argv = process.argv.slice(2);
if (argv[0] === 'check') {
  const { checkMain } = await import('../dist/check/main.js');
  const code = await checkMain(argv.slice(1));
  if (code !== null) process.exit(code);
}
const { main } = await import('../dist/main.js');
main(argv);
