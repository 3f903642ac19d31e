#!/usr/bin/env node
// Entry point: everything lives in the built CLI; `check` takes a lean path (see src/main.ts).
import { main } from '../dist/main.js';
main(process.argv.slice(2));
