// Free TCP ports for tests.
import fs from 'node:fs';
import net from 'node:net';

/** The lowest port of the kernel's ephemeral range, which listen(0) and every outbound connection draw from. */
function ephemeralLow(): number {
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

/** Whether `port` can be bound on 127.0.0.1 right now (it is released again at once). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port from listen(0). */
function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A port that was free on 127.0.0.1 a moment ago, for a process under test to bind. Why not listen(0): a port
 * from the ephemeral range, once released, can be taken as the local port of any outbound connection (the tests
 * open thousands) before the fake vLLM, which binds only after its load time, gets to it. A random port below
 * that range is taken only by another test choosing the same one in the same second.
 */
export async function freePort(): Promise<number> {
  if (HIGH - LOW >= 1000) {
    for (let i = 0; i < 100; i++) {
      const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
      if (await bindable(port)) return port;
    }
  }
  return ephemeralPort();
}

/** Whether something accepts TCP connections on host:port right now. */
export function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
