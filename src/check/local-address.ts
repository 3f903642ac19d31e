// Whether an address names this machine: check sends a key only there when the address comes from a file.
import { networkInterfaces } from 'node:os';

/**
 * True for a wildcard, loopback or `localhost`, or an address of one of this machine's interfaces: every bind
 * address `start` can have used. Interfaces are listed only for another address (a syscall `check` rarely needs).
 */
export function isLocalAddress(host: string): boolean {
  const h = host.toLowerCase();
  if (h === '' || h === '0.0.0.0' || h === '::' || h === 'localhost' || h === '::1') return true;
  if (/^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.address.toLowerCase() === h) return true;
  }
  return false;
}
