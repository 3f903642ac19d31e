// Why a port cannot be bound, in words, with its fix: one wording for `start` (which stops) and `probe` (which lists it).
import type { ErrorCode } from '../errors.js';

/** A bind failure explained: the stable code, what is wrong, and what to do (without the "Fix: " prefix). */
export interface BindFailure {
  code: ErrorCode;
  message: string;
  fix: string;
}

/** Where the failing listener's settings come from, for the fix. */
export interface BindSettings {
  /** `public`, `backend`, `Ray head`, ... */
  what: string;
  host: string;
  port: number;
  /** How to choose another port, e.g. `choose another with --port N (proxy.port)`. */
  portFix: string;
}

/**
 * Explains the errno of a failed listen(). Why more than "in use": a privileged port (EACCES), an address that is not
 * this machine's (EADDRNOTAVAIL) or a host name that does not resolve (ENOTFOUND) have other fixes, and only the
 * first is about another process.
 */
export function describeBindFailure(s: BindSettings, errno: string, holder: string | null = null): BindFailure {
  const address = s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
  const hostFix = 'use --host 0.0.0.0 (every address of this machine; proxy.host, LLMSERVE_HOST) or one of its own addresses';
  switch (errno) {
    case 'EADDRINUSE':
      return { code: 'PORT_IN_USE', message: `${s.what} port ${address} is already in use${holder ? ` by ${holder}` : ''}`, fix: `${holder ? 'stop it' : 'stop what holds it'}, or ${s.portFix}` };
    case 'EACCES':
      return {
        code: 'PORT_IN_USE',
        message: `${s.what} port ${address} cannot be bound by this user (EACCES)`,
        fix: `ports below 1024 need root: run as root or with CAP_NET_BIND_SERVICE, or ${s.portFix}`,
      };
    case 'EADDRNOTAVAIL':
      return { code: 'CONFIG', message: `${s.what} address ${JSON.stringify(s.host)} is not an address of this machine (EADDRNOTAVAIL)`, fix: hostFix };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code: 'CONFIG', message: `${s.what} host ${JSON.stringify(s.host)} does not resolve to an address (${errno})`, fix: hostFix };
    default:
      return { code: 'PORT_IN_USE', message: `${s.what} port ${address} cannot be bound (${errno})`, fix: `stop what holds it, or ${s.portFix}` };
  }
}
