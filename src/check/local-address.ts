// Whether an address names this machine: check sends a key only there when the address comes from a file.
import { hostname, networkInterfaces } from 'node:os';

/**
 * True for a wildcard, loopback, `localhost` or this machine's host name (`--host $(hostname)`), or an address of
 * one of this machine's interfaces: the bind addresses `start` is given in practice. Interfaces are listed only for
 * another address (a syscall `check` rarely needs). Another DNS name is not looked up (check stays fast): check then
 * uses the host from the environment or the config file, as `start` resolved it.
 */
export function isLocalAddress(host: string): boolean {
  const h = host.toLowerCase();
  if (h === '' || h === '0.0.0.0' || h === '::' || h === 'localhost' || h === '::1' || h === hostname().toLowerCase()) return true;
  if (/^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.address.toLowerCase() === h) return true;
  }
  return false;
}
