// /proc/PID/stat read the one safe way: the fields after the command name.
import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/PID/stat after the command name (field 3, the state, first), or null when the process is
 * gone or there is no /proc. Why from the last ')': the command name is in parentheses and may hold spaces and ')'.
 */
export function procStatFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}
