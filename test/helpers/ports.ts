// Free TCP ports for tests.
import net from 'node:net';
import { freePort as pickFreePort } from './free-port.mjs';

/** A port that was free on 127.0.0.1 a moment ago, for a process under test to bind (free-port.mjs says how, and why not listen(0)). */
export const freePort: () => Promise<number> = pickFreePort;

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
