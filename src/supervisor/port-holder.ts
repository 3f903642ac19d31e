// Who holds a TCP port: the listening socket's inode from /proc/net/tcp{,6}, then the process with an fd on it.
// Best effort (Linux only, and only processes this user may inspect): null when unknown.
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import path from 'node:path';

/** The process found listening on a port. */
export interface PortHolder {
  pid: number;
  command: string;
}

const LISTEN = '0A';
const MAX_COMMAND = 120;

/** Inodes of the sockets listening on `port` in one /proc/net/tcp-format table (any local address). */
export function listeningInodes(table: string, port: number): string[] {
  const inodes: string[] = [];
  for (const line of table.split('\n').slice(1)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const inode = fields[9];
    if (local === undefined || inode === undefined || fields[3] !== LISTEN || inode === '0') continue;
    const hexPort = local.slice(local.lastIndexOf(':') + 1);
    if (Number.parseInt(hexPort, 16) === port) inodes.push(inode);
  }
  return inodes;
}

/**
 * The head of a /proc/net/tcp-format table, up to the end of its listening sockets. Why not the whole file: Linux lists
 * the listening sockets first (its tcp_get_idx walks the listening hash before the established one), and the rest,
 * every connection and TIME_WAIT of the network namespace (a busy proxy's, or the host's with hostNetwork), can be
 * tens of thousands of lines: 27,000 took the kernel 65 ms to print and us 35 ms to parse, with the supervisor's event
 * loop blocked, on each readiness check. A kernel that orders its table otherwise (gVisor lists sockets as created) can
 * only make a listener go unseen here: a missed other server (as where /proc cannot be read), never a false one.
 */
export function readListeningSection(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    let text = '';
    let scanned = -1; // where the next unchecked line starts; -1 while the header line is not complete
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return text;
      text += chunk.toString('latin1', 0, n);
      if (scanned === -1) {
        const headerEnd = text.indexOf('\n');
        if (headerEnd === -1) continue;
        scanned = headerEnd + 1;
      }
      for (let end = text.indexOf('\n', scanned); end !== -1; end = text.indexOf('\n', scanned)) {
        if (text.slice(scanned, end).trim().split(/\s+/)[3] !== LISTEN) return text.slice(0, scanned);
        scanned = end + 1;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Inodes of every socket listening on TCP `port` on this machine (IPv4 and IPv6). */
function portListeners(port: number, procRoot: string): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    try {
      for (const inode of listeningInodes(readListeningSection(path.join(procRoot, table)), port)) inodes.add(inode);
    } catch {
      // No such table (no IPv6, not Linux): the other one may still answer.
    }
  }
  return inodes;
}

/** The socket inodes a process has open (none when it is gone or not ours to inspect). */
function socketInodes(procRoot: string, pid: string): string[] {
  let fds: string[];
  try {
    fds = readdirSync(path.join(procRoot, pid, 'fd'));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(path.join(procRoot, pid, 'fd', fd)));
      if (m?.[1] !== undefined) out.push(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** The first process with an fd on one of `inodes`, or null. */
function holderOf(inodes: ReadonlySet<string>, procRoot: string): PortHolder | null {
  let entries: string[];
  try {
    entries = readdirSync(procRoot).filter((e) => /^\d+$/.test(e));
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (socketInodes(procRoot, entry).some((inode) => inodes.has(inode))) return { pid: Number(entry), command: commandOf(procRoot, entry) };
  }
  return null;
}

/** Finds the process listening on TCP `port`, or null when it cannot be told. */
export function findPortHolder(port: number, procRoot = '/proc'): PortHolder | null {
  const inodes = portListeners(port, procRoot);
  return inodes.size === 0 ? null : holderOf(inodes, procRoot);
}

/**
 * Listeners on TCP `port` that none of `pids` holds (vLLM binds with SO_REUSEPORT, so another server on its port
 * shares it without an error): how many, and one's process where it can be told. Null when nothing can be told (no
 * listener seen at all: not Linux, or /proc unreadable).
 */
export function otherListeners(port: number, pids: readonly number[], procRoot = '/proc'): { count: number; holder: PortHolder | null } | null {
  const inodes = portListeners(port, procRoot);
  if (inodes.size === 0) return null;
  const ours = new Set(pids.flatMap((pid) => socketInodes(procRoot, String(pid))).filter((inode) => inodes.has(inode)));
  const others = new Set([...inodes].filter((inode) => !ours.has(inode)));
  return { count: others.size, holder: others.size === 0 ? null : holderOf(others, procRoot) };
}

/** `pid N (command line)`, the way error messages name a port's holder. */
export function describePortHolder(holder: PortHolder | null): string | null {
  if (holder === null) return null;
  return holder.command ? `pid ${holder.pid} (${holder.command})` : `pid ${holder.pid}`;
}

function commandOf(procRoot: string, pid: string): string {
  try {
    const cmd = readFileSync(path.join(procRoot, pid, 'cmdline'), 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    return cmd.length > MAX_COMMAND ? `${cmd.slice(0, MAX_COMMAND - 3)}...` : cmd;
  } catch {
    return '';
  }
}
