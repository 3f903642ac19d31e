// Who holds a TCP port: the listening socket's inode from /proc/net/tcp{,6}, then the process with an fd on it.
// Best effort (Linux only, and only processes this user may inspect): null when unknown.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
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

/** Finds the process listening on TCP `port`, or null when it cannot be told. */
export function findPortHolder(port: number, procRoot = '/proc'): PortHolder | null {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    try {
      for (const inode of listeningInodes(readFileSync(path.join(procRoot, table), 'utf8'), port)) inodes.add(inode);
    } catch {
      // No such table (no IPv6, not Linux): the other one may still answer.
    }
  }
  if (inodes.size === 0) return null;
  let entries: string[];
  try {
    entries = readdirSync(procRoot).filter((e) => /^\d+$/.test(e));
  } catch {
    return null;
  }
  for (const entry of entries) {
    let fds: string[];
    try {
      fds = readdirSync(path.join(procRoot, entry, 'fd'));
    } catch {
      continue; // gone, or not ours to inspect
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(path.join(procRoot, entry, 'fd', fd));
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1] !== undefined && inodes.has(m[1])) return { pid: Number(entry), command: commandOf(procRoot, entry) };
    }
  }
  return null;
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
