// `--role`, `--nodes`, `--head` (and LLMSERVE_ROLE/NODES/HEAD): validated together, since they only make sense together.
import { configError, usageError } from '../errors.js';
import { DEFAULTS } from './defaults.js';
import type { ClusterConfig } from './types.js';
import { expected } from './values.js';

/** One option as given: its value and where it came from (a flag or an env name), or undefined when not given. */
export type Given = { value: string; where: string } | undefined;

/** Resolves the cluster role; throws a usage error (exit 2) on a combination that cannot work. */
export function resolveCluster(role: Given, nodes: Given, head: Given, models: number): ClusterConfig {
  const r = role?.value ?? 'single';
  if (r !== 'single' && r !== 'head' && r !== 'worker') throw expected(role?.where ?? '--role', '"head", "worker" or "single"', r);
  let n = 1;
  if (nodes !== undefined) {
    if (!/^\s*\d+\s*$/.test(nodes.value)) throw expected(nodes.where, 'a whole number of nodes (the head included)', nodes.value);
    n = Number(nodes.value);
  }
  if (r === 'head') {
    if (nodes === undefined) throw usageError('--role head needs --nodes N (LLMSERVE_NODES): the number of nodes in the Ray cluster, the head included');
    if (n < 2) throw usageError(`--role head needs --nodes 2 or more (the head included), got ${n}; for one node, leave --role out`);
    if (head !== undefined) throw usageError(`${head.where} is for --role worker (the address it joins); the head is this node`);
    if (models > 1) throw configError('--role head serves one model across nodes; a models: list with several entries is for one node (leave --role out)');
  } else if (r === 'worker') {
    if (head === undefined || head.value.trim() === '') throw usageError('--role worker needs --head ADDRESS (LLMSERVE_HEAD): the Ray head to join, e.g. 10.0.0.1:6379');
    if (nodes !== undefined) throw usageError(`${nodes.where} is for --role head (how many nodes to wait for); a worker only joins`);
    checkHeadAddress(head.value.trim(), head.where);
  } else {
    if (nodes !== undefined && n !== 1) throw usageError(`${nodes.where} ${n} needs --role head (LLMSERVE_ROLE=head) on the head node and --role worker on the others`);
    if (head !== undefined) throw usageError(`${head.where} needs --role worker (LLMSERVE_ROLE=worker)`);
  }
  return { role: r, nodes: r === 'head' ? n : 1, head: r === 'worker' ? withRayPort(head!.value.trim()) : null };
}

/**
 * HOST, or [IPv6] in brackets, without a port gets the head's Ray port. Why: `ray start --address` needs HOST:PORT
 * (Ray splits it at the last ':'), and a portless address failed every join as if the head were not up yet.
 */
function withRayPort(address: string): string {
  const portless = !address.includes(':') || /^\[[^\]]*\]$/.test(address);
  return portless ? `${address}:${DEFAULTS.rayPort}` : address;
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/**
 * `--head`: HOST[:PORT] (a name, an IPv4 address, or [IPv6]). Why check it here: a worker retries joining a head
 * it cannot reach until the start-up timeout (30 min), so a URL, a stray `$(VAR)` left by Kubernetes or a bad port
 * would only fail half an hour later, as a timeout.
 */
function checkHeadAddress(value: string, where: string): void {
  const what = 'the Ray head as HOST[:PORT] (port 6379 if left out), e.g. 10.0.0.1:6379 or head-0.llm.svc';
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(value);
  const plain = /^([^:\s]+)(?::(\d+))?$/.exec(value);
  const host = bracketed?.[1] ?? plain?.[1];
  const port = bracketed ? bracketed[2] : plain?.[2];
  const hint = value.includes('://') ? 'give the address without a scheme (Ray does not take a URL)' : value.includes('$') ? 'a variable was not expanded: set it, or give the address itself' : undefined;
  if (host === undefined || (plain && !HOST.test(host)) || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw expected(where, what, value, hint);
  }
}
