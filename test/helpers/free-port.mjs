// Free TCP ports for processes under test, shared by the tests (ports.ts) and the bench: plain JavaScript, so that
// `node bench/run.mjs` can import it without the TypeScript loader.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The lowest port of the kernel's ephemeral range, which listen(0) and every outbound connection draw from. */
function ephemeralLow() {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // Not Linux: the IANA range's start.
  }
  return 49152;
}

/** Candidates are drawn from [LOW, ephemeral low): ports nothing takes unless it binds them by number. */
const LOW = 10_000;
const HIGH = ephemeralLow();

/** Binds `port` on 127.0.0.1 and releases it at once: the port bound (0 picks one), or false when it is taken. */
function bindable(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => {
      const bound = srv.address().port;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * A port that was free on 127.0.0.1 a moment ago, for a process under test to bind. Why not listen(0): a port
 * from the ephemeral range, once released, can be taken as the local port of any outbound connection (the tests
 * and the bench open thousands) before the process that should bind it (the fake vLLM binds only after its load
 * time) gets to it. A random port below that range is taken only by a process that binds it by number; another
 * caller of this function, in any process, is kept off it by its claim (below).
 * @returns {Promise<number>}
 */
export async function freePort() {
  if (HIGH - LOW >= 1000) {
    for (let i = 0; i < 100; i++) {
      const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
      if (!given.has(port) && (await bindable(port)) !== false && claimPort(port)) return give(port);
    }
  }
  for (let i = 0; i < 100; i++) {
    const port = await bindable(0);
    if (port === false) break;
    if (!given.has(port) && claimPort(port)) return give(port);
  }
  throw new Error('no TCP port could be bound on 127.0.0.1');
}

/**
 * Ports this process handed out: never twice. Why: a caller takes two ports in a row (public and backend) and binds
 * neither until later, so the second draw could return the first; llmserve refuses one port for two listeners.
 */
const given = new Set();

/**
 * Where the ports handed out are claimed across processes, a file per port holding the claimer's pid. Why: the test
 * files run in parallel, each in its own process, and a port is bound only seconds after it is drawn (the fake vLLM
 * binds after its load time). Two files drawing the same port in that window: on Node 20 one start fails (port in
 * use); on Node 22 and later both fake vLLMs bind it, since the fake sets SO_REUSEPORT as vLLM does, and the kernel
 * splits one model's requests between them.
 */
const CLAIMS = path.join(os.tmpdir(), 'llmserve-test-ports');
/** A claim whose process is gone is removed once older than this (a test process killed before its exit handler). */
const STALE_CLAIM_MS = 10 * 60_000;
const claimed = [];

/** Claims `port` for this process (freePort does; exported for its test); false when another process holds its claim. */
export function claimPort(port) {
  const file = path.join(CLAIMS, String(port));
  try {
    fs.mkdirSync(CLAIMS, { recursive: true });
    fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch (err) {
    // Claimed already (by a live process, or a stale claim: skipped too, the range is large), or the temporary
    // directory refuses files: then the port is used unclaimed, as before claims existed.
    return err.code !== 'EEXIST';
  }
  if (claimed.length === 0) process.once('exit', releaseClaims);
  claimed.push(file);
  return true;
}

/** Removes this process's claims: at exit, when nothing it started can still be bound to them. */
function releaseClaims() {
  for (const file of claimed) fs.rmSync(file, { force: true });
}

/** Removes claims whose process is gone and which are older than STALE_CLAIM_MS, once per process. */
function sweepStaleClaims() {
  let names;
  try {
    names = fs.readdirSync(CLAIMS);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    const file = path.join(CLAIMS, name);
    try {
      if (now - fs.statSync(file).mtimeMs < STALE_CLAIM_MS || isAlive(Number(fs.readFileSync(file, 'utf8')))) continue;
      fs.rmSync(file, { force: true });
    } catch {
      // Removed meanwhile by another sweep.
    }
  }
}

/** @param {number} pid */
function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** @param {number} port */
function give(port) {
  if (given.size === 0) sweepStaleClaims();
  given.add(port);
  return port;
}
