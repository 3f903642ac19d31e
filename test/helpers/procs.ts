// Process inspection through /proc (Linux): find, follow and kill what a test started.
import fs from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  state: string;
  comm: string;
  cmdline: string;
}

/** Parses /proc/PID/stat and cmdline; undefined when the process is gone. */
export function readProcess(pid: number): ProcInfo | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: it runs to the *last* ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const [state = '?', ppid = '0', pgid = '0', sid = '0'] = stat.slice(close + 2).split(' ');
    let cmdline = '';
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    } catch { /* raced with exit */ }
    return { pid, ppid: Number(ppid), pgid: Number(pgid), sid: Number(sid), state, comm, cmdline };
  } catch {
    return undefined;
  }
}

/** Every process visible in /proc (zombies included; see isAlive). */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readProcess(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** Whether pid is a running process (a zombie counts as dead). */
export function isAlive(pid: number): boolean {
  const info = readProcess(pid);
  return info !== undefined && info.state !== 'Z' && info.state !== 'X';
}

/** All live descendants of pid (children, grandchildren, ...). */
export function descendantsOf(pid: number): ProcInfo[] {
  const all = listProcesses().filter((p) => p.state !== 'Z');
  const out: ProcInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const p of all) {
      if (p.ppid === parent) {
        out.push(p);
        queue.push(p.pid);
      }
    }
  }
  return out;
}

/** Live members of process group pgid. */
export function processGroupMembers(pgid: number): ProcInfo[] {
  return listProcesses().filter((p) => p.pgid === pgid && p.state !== 'Z');
}

/** Live processes (other than this one) whose environment or command line contains `marker`. */
export function findByMarker(marker: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const p of listProcesses()) {
    if (p.pid === process.pid || p.state === 'Z') continue;
    let environ = '';
    try {
      environ = fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8');
    } catch { /* not ours or gone */ }
    // environ is the env at exec time: inherited by every descendant, even ones that retitle themselves.
    if (environ.includes(marker) || p.cmdline.includes(marker)) out.push(p);
  }
  return out;
}

function ownPgid(): number {
  return readProcess(process.pid)?.pgid ?? -1;
}

/** SIGKILLs pid, its process group (if it leads one that is not ours) and all its descendants; ignores errors. */
export function killTree(pid: number): void {
  const victims = [pid, ...descendantsOf(pid).map((p) => p.pid)]; // collect first: killing reparents the rest
  const info = readProcess(pid);
  if (info && info.pgid === pid && info.pgid !== ownPgid()) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch { /* gone */ }
  }
  for (const v of victims) {
    try {
      process.kill(v, 'SIGKILL');
    } catch { /* gone */ }
  }
}

/** SIGKILLs every process carrying `marker` (teardown); returns how many were signalled. */
export function killByMarker(marker: string): number {
  const found = findByMarker(marker);
  for (const p of found) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch { /* gone */ }
  }
  return found.length;
}

/**
 * Which process holds the server side of each TCP connection to `serverPort` (IPv4 loopback), by the client's port:
 * /proc/net/tcp gives each socket's inode, and /proc/PID/fd which process has it open. Only `pids` are searched.
 */
export function connectionOwners(serverPort: number, pids: readonly number[]): Map<number, number> {
  const byInode = new Map<string, number>();
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [local, remote, state, inode] = [f[1]!, f[2]!, f[3]!, f[9]!];
    // 01: ESTABLISHED; the server side has the server's port as its local port.
    if (state !== '01' || parseInt(local.split(':')[1]!, 16) !== serverPort) continue;
    byInode.set(inode, parseInt(remote.split(':')[1]!, 16));
  }
  const owners = new Map<number, number>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch { /* gone */ }
    for (const fd of fds) {
      let target = '';
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch { /* closed meanwhile */ }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      const clientPort = m === null ? undefined : byInode.get(m[1]!);
      if (clientPort !== undefined) owners.set(clientPort, pid);
    }
  }
  return owners;
}
