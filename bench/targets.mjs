// Starts what the bench measures: the fake upstream, llmserve's proxy child, the bare http-proxy, nginx.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/free-port.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const KEY = 'sk-bench-master-0123456789abcdef';

/** Spawns a Node child with IPC and waits for its `listening` message. */
function nodeChild(args, { stdout = 'ignore', execArgv = [], env = process.env } = {}) {
  const child = spawn(process.execPath, [...execArgv, ...args], { cwd: root, env, stdio: ['ignore', stdout, 'inherit', 'ipc'] });
  const ready = new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m?.type === 'listening') resolve(m.port);
      else if (m?.type === 'fatal') reject(new Error(`${args.join(' ')}: ${m.message}`));
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before listening`)));
  });
  return { child, ready };
}

/** The fake upstream; `onClosed(id, t)` hears about streams closed early. */
export async function startUpstream(onClosed) {
  const { child, ready } = nodeChild(['bench/upstream.mjs']);
  child.on('message', (m) => m?.type === 'closed' && onClosed(m.id, m.t));
  const port = await ready;
  return { name: 'direct', port, pid: child.pid, pids: () => [child.pid], stop: () => stopChild(child) };
}

/**
 * llmserve's proxy as the supervisor runs it: `node <its Node flags> bin/llmserve.js proxy`, settings over IPC, a
 * master key, its output (the access log) relayed line by line by a process of its own, as the supervisor does.
 */
export async function startLlmserve(upstreamPort, logFile, extra = {}) {
  const { proxySettings } = await import(path.join(root, 'dist/proxy/settings.js'));
  const { proxyNodeFlags } = await import(path.join(root, 'dist/proxy/node-flags.js'));
  const log = fs.openSync(logFile, 'a');
  const execArgv = proxyNodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  const { child, ready } = nodeChild(['bin/llmserve.js', 'proxy'], { stdout: 'pipe', execArgv, env: { ...process.env, NO_COLOR: '1' } });
  // The relay reads the pipe's other end; this process lets go of its own copy, so that only the relay reads.
  const relay = spawn(process.execPath, ['bench/relay.mjs'], { cwd: root, stdio: [child.stdout, log, 'inherit'] });
  child.stdout.destroy();
  fs.closeSync(log);
  const settings = proxySettings({
    backendUrl: `http://127.0.0.1:${upstreamPort}`,
    servedModelName: 'bench-model',
    keys: [{ name: 'master', sha256Hex: createHash('sha256').update(KEY).digest('hex') }],
    ...extra,
  });
  child.send({ type: 'start', settings });
  const port = await ready;
  const relayDone = new Promise((resolve) => relay.once('exit', resolve));
  return {
    name: 'llmserve',
    port,
    pid: child.pid,
    // The proxy's processes (RSS, CPU per event). Not the relay's: it stands for the supervisor, whose memory is not
    // the proxy's; its CPU shares the cores all the same, which is what the latencies and the throughput feel.
    pids: () => [child.pid, ...childrenOf(child.pid)],
    stop: async () => {
      await stopChild(child);
      // It ends when the proxy's output closes; a stuck one is stopped like the rest.
      await Promise.race([relayDone, new Promise((resolve) => setTimeout(resolve, 3000))]);
      await stopChild(relay);
    },
  };
}

/** The bare http-proxy baseline. */
export async function startBare(upstreamPort) {
  const { child, ready } = nodeChild(['bench/bare-proxy.mjs', `http://127.0.0.1:${upstreamPort}`]);
  const port = await ready;
  return { name: 'http-proxy', port, pid: child.pid, pids: () => [child.pid], stop: () => stopChild(child) };
}

/** nginx as an equivalent key-checking proxy (as many workers as llmserve's proxy has processes), or null when absent. */
export async function startNginx(upstreamPort, dir, workers = 1) {
  const bin = whichNginx();
  if (bin === null) return null;
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nginxConf(port, upstreamPort, dir, workers));
  const child = spawn(bin, ['-p', dir, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, 5000);
  return { name: 'nginx', port, pid: child.pid, pids: () => [child.pid, ...childrenOf(child.pid)], stop: () => stopChild(child, 'SIGQUIT') };
}

function nginxConf(port, upstreamPort, dir, workers) {
  return `daemon off;
worker_processes ${workers};
worker_rlimit_nofile 65535;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 20000; multi_accept on; }
http {
  access_log ${dir}/nginx-access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 1024; keepalive_timeout 4s; keepalive_requests 1000000; }
  map $http_authorization $bench_key_ok { "Bearer ${KEY}" 1; default 0; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      if ($bench_key_ok = 0) { return 401 '{"error":{"message":"invalid key","code":"invalid_api_key"}}'; }
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

/** The `name` binary on PATH (or in an sbin directory) that runs (`versionArgs` exit 0), or null. */
export function whichProgram(name, versionArgs = ['-v']) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return spawnSync(p, versionArgs).status === 0 ? p : null;
  }
  return null;
}

/** The nginx binary on PATH (or in an sbin directory) that runs, or null. */
export const whichNginx = () => whichProgram('nginx');

/** Live children of pid (nginx workers). */
export function childrenOf(pid) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

// Clock ticks per second of /proc/PID/stat's CPU times (getconf CLK_TCK; 100 on Linux).
const clockTicks = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/** CPU time a process has used so far (user + system), ms; 0 when gone. */
export function cpuMsOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5) (utime, stime), counted here from field 3 (state).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return 0;
  }
}

/** Resident set size of a process, bytes (0 when gone). */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples the summed RSS of a target's processes every 100 ms; stop() returns the peak. The processes are listed once:
 * listing them scans every /proc entry (about 1 ms), which every 100 ms stalled the client, in the proxies' rounds only.
 */
export function rssSampler(target) {
  let peak = 0;
  const pids = target.pids();
  const sample = () => (peak = Math.max(peak, pids.reduce((sum, pid) => sum + rssOf(pid), 0)));
  sample();
  const timer = setInterval(sample, 100);
  return { stop: () => (clearInterval(timer), sample(), peak) };
}

/** Resolves once something accepts connections on 127.0.0.1:port; rejects after `ms`. */
export function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve()));
      s.once('error', () => (Date.now() > deadline ? reject(new Error(`nothing listens on ${port}`)) : setTimeout(attempt, 20)));
    };
    attempt();
  });
}

/** Sends `signal`, then SIGKILL if the child has not exited 3 s later; resolves on its exit. */
export function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => (clearTimeout(timer), resolve()));
    child.kill(signal);
  });
}
