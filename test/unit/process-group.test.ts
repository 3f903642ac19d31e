// A vLLM's process group as the health tick samples it (src/supervisor/child.ts): down from known members, the same
// members a scan of every process finds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { groupMembersBelow, liveGroupMembers } from '../../src/supervisor/child.js';
import { waitFor } from '../helpers/wait.js';

test('groupMembersBelow finds a group\'s children and grandchildren from its leader, leaves out those of another group and the exited', async (t) => {
  // A leader (the API server) with a child (EngineCore) that has its own child (a worker), and a child that moved to a
  // group of its own (setsid): not a member.
  const leader = spawn('/bin/sh', ['-c', 'sh -c "sleep 60 & sleep 60" & setsid sleep 60 & sleep 60'], { detached: true, stdio: 'ignore' });
  const pgid = leader.pid!;
  // Killed after the test: the group, and the sleep that left it (a group of its own).
  const own: number[] = [];
  t.after(() => {
    process.kill(-pgid, 'SIGKILL');
    for (const p of own) process.kill(-p, 'SIGKILL');
  });
  // The leader, the inner sh, its two sleeps and the leader's own sleep: five members, once every sleep has been
  // exec'd (until then a forked shell stands where a sleep will be).
  const sleeping = () => liveGroupMembers(pgid).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u000060\u0000');
  await waitFor(() => sleeping().length === 3 && liveGroupMembers(pgid).length === 5, { timeoutMs: 5000, message: 'five members, three of them sleeping' });
  const scanned = liveGroupMembers(pgid);
  own.push(...readFileSync(`/proc/${pgid}/task/${pgid}/children`, 'utf8').trim().split(' ').map(Number).filter((p) => !scanned.includes(p)));
  assert.equal(own.length, 1, 'the setsid sleep, a child of the leader in a group of its own');
  const walked = groupMembersBelow(pgid, [pgid]);
  assert.ok(walked !== null, 'this kernel has /proc/PID/task/TID/children');
  assert.deepEqual([...walked].sort(), [...scanned].sort());
  // The setsid'd sleep is a descendant but not a member; it was left out above. The inner sh killed: it is left out,
  // and its sleeps, orphaned (no longer below the leader), are still found from the members known before, as the
  // health tick walks from every pid it has seen.
  const inner = scanned.find((p) => p !== pgid && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sh\u0000'))!;
  process.kill(inner, 'SIGKILL');
  await waitFor(() => liveGroupMembers(pgid).length === 4, { timeoutMs: 5000, message: 'one member gone' });
  assert.deepEqual([...groupMembersBelow(pgid, [...scanned, 999_999_999])!].sort(), [...liveGroupMembers(pgid)].sort());
});
