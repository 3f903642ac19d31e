// Free TCP ports for processes under test, shared by the tests (ports.ts) and the bench: plain JavaScript, so that
// `node bench/run.mjs` can import it without the TypeScript loader.
import fs from 'node:fs';
import net from 'node:net';

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
 * time) gets to it. A random port below that range is taken only by another caller choosing the same one in the
 * same second.
 * @returns {Promise<number>}
 */
export async function freePort() {
  if (HIGH - LOW >= 1000) {
    for (let i = 0; i < 100; i++) {
      const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
      if (!given.has(port) && (await bindable(port)) !== false) return give(port);
    }
  }
  for (let i = 0; i < 100; i++) {
    const port = await bindable(0);
    if (port === false) break;
    if (!given.has(port)) return give(port);
  }
  throw new Error('no TCP port could be bound on 127.0.0.1');
}

/**
 * Ports this process handed out: never twice. Why: a caller takes two ports in a row (public and backend) and binds
 * neither until later, so the second draw could return the first; llmserve refuses one port for two listeners.
 */
const given = new Set();

/** @param {number} port */
function give(port) {
  given.add(port);
  return port;
}
