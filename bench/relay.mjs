#!/usr/bin/env node
// The supervisor's relay of the proxy's output, on its own: the proxy's stdout comes in on stdin, is split into lines
// and written out (stdout: the bench's log file) as `llmserve start` writes them, through the same lineSplitter and
// logger.passthrough. Why in the bench: under `llmserve start` every access-log line crosses this relay, in a process
// of its own whose CPU shares the cores with the proxy.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { createLogger, lineSplitter } = await import(pathToFileURL(path.join(root, 'dist/log.js')).href);
const logger = createLogger({ format: 'text', color: false });
// As src/supervisor/child.ts splits a child's output (a progress frame after 100 ms of quiet).
const split = lineSplitter((line, whole) => logger.passthrough('proxy', line, 'stdout', whole), { frameIdleMs: 100 });
process.stdin.on('data', (chunk) => split.push(chunk));
process.stdin.on('end', () => split.flush());
