// `llmserve proxy` as a real child process: IPC start/listening/state/drain, fatal errors, exit on disconnect.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { proxySettings, type ChildMessage, type ProxySettings } from '../../src/proxy/settings.js';
import { KEY, bearer, request, sha256Hex, startUpstream } from '../helpers/upstream.js';

const fixture = fileURLToPath(new URL('../fixtures/run-proxy.mts', import.meta.url));

/** Spawns the proxy child the way the supervisor does (own group, piped output, IPC). */
function spawnProxy(): { child: ChildProcess; output: () => string; next: (type: ChildMessage['type'], ms?: number) => Promise<ChildMessage> } {
  const child = fork(fixture, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const messages: ChildMessage[] = [];
  const waiting: { type: string; resolve: (m: ChildMessage) => void }[] = [];
  child.on('message', (m: ChildMessage) => {
    const i = waiting.findIndex((w) => w.type === m.type);
    if (i >= 0) waiting.splice(i, 1)[0]?.resolve(m);
    else messages.push(m);
  });
  const next = (type: ChildMessage['type'], ms = 15_000) =>
    new Promise<ChildMessage>((resolve, reject) => {
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) return resolve(messages.splice(i, 1)[0]!);
      const timer = setTimeout(() => reject(new Error(`no ${type} message within ${ms} ms; output:\n${output}`)), ms);
      waiting.push({ type, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  return { child, output: () => output, next };
}

/** Waits for the child to exit (with a deadline) and returns its code. */
async function exited(child: ChildProcess, ms = 10_000): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return code;
}

function settings(over: Partial<ProxySettings>): ProxySettings {
  return proxySettings({ keys: [{ name: 'alice', sha256Hex: sha256Hex(KEY) }], servedModelName: 'test-model', ...over });
}

describe('proxy child process', () => {
  it('starts from IPC, serves, follows state and drain messages, exits 0 on disconnect', async (t) => {
    const upstream = await startUpstream();
    t.after(() => upstream.close());
    const { child, next, output } = spawnProxy();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.send({ type: 'start', settings: settings({ backendUrl: upstream.url, state: 'starting' }) });
    const listening = await next('listening');
    assert.equal(listening.type, 'listening');
    const port = (listening as { port: number }).port;
    assert.ok(port > 0);
    // No key on argv: only the script path.
    assert.deepEqual(child.spawnargs.slice(-1), [fixture]);

    assert.equal((await request(port, '/v1/models', { headers: bearer })).status, 503);
    child.send({ type: 'state', state: 'ready', seq: 3 });
    // The answer says the state is in force: the next request is served.
    assert.deepEqual(await next('state-applied'), { type: 'state-applied', seq: 3 });
    assert.equal((await request(port, '/v1/models', { headers: bearer })).status, 200);
    // A state without seq (as before) is applied without an answer.
    child.send({ type: 'state', state: 'restarting' });
    const deadline = Date.now() + 5000;
    let status = 200;
    while (status !== 503 && Date.now() < deadline) status = (await request(port, '/v1/models', { headers: bearer })).status;
    assert.equal(status, 503);

    child.send({ type: 'drain', timeoutMs: 1000 });
    assert.deepEqual(await next('drained'), { type: 'drained', remaining: 0 });

    child.disconnect();
    assert.equal(await exited(child), 0);
    assert.match(output(), /proxy +\| .*listening on http:\/\/127\.0\.0\.1:/);
    assert.ok(!output().includes(KEY));
  });

  it('ignores SIGINT and exits 0 on SIGTERM', async (t) => {
    const upstream = await startUpstream();
    t.after(() => upstream.close());
    const { child, next } = spawnProxy();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.send({ type: 'start', settings: settings({ backendUrl: upstream.url }) });
    const { port } = (await next('listening')) as { port: number };
    child.kill('SIGINT');
    // Still serving after SIGINT.
    assert.equal((await request(port, '/health/liveness')).status, 200);
    assert.equal(child.exitCode, null);
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  it('sends the last event and the end of a stream in one write when the backend sent them together', async (t) => {
    // The fake ends a stream with res.end('data: [DONE]\n\n'): the event and the last chunk in one write. Written
    // apart by the proxy, this client read them apart about half the time (ten in a row: 1 in 1,000 by chance).
    const upstream = await startUpstream({ served: 'test-model', behaviour: { events: 2, intervalMs: 5 } });
    t.after(() => upstream.close());
    const { child, next } = spawnProxy();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.send({ type: 'start', settings: settings({ backendUrl: upstream.url, state: 'ready' }) });
    const { port } = (await next('listening')) as { port: number };
    const body = JSON.stringify({ model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    for (let i = 0; i < 10; i++) {
      const reads = await new Promise<string[]>((resolve, reject) => {
        const got: string[] = [];
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(
            `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\n` +
              `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
          );
        });
        socket.on('data', (d: Buffer) => got.push(d.toString('latin1')));
        socket.on('end', () => resolve(got));
        socket.on('error', reject);
      });
      assert.match(reads.join(''), /^HTTP\/1\.1 200 /);
      const last = reads[reads.length - 1] ?? '';
      assert.match(last, /data: \[DONE\]\n\n\r\n0\r\n\r\n$/, `stream ${i}: the end came apart from [DONE]: ${JSON.stringify(reads.slice(-2))}`);
    }
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  it('sends fatal naming the port and exits 2 when the port is taken', async (t) => {
    const blocker = net.createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    t.after(() => blocker.close());
    const port = (blocker.address() as net.AddressInfo).port;
    const { child, next } = spawnProxy();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.send({ type: 'start', settings: settings({ port }) });
    const fatal = (await next('fatal')) as { code: string; message: string };
    assert.equal(fatal.code, 'PORT_IN_USE');
    assert.match(fatal.message, new RegExp(String(port)));
    assert.equal(await exited(child), 2);
  });

  it('sends fatal naming the file when the TLS certificate cannot be read', async (t) => {
    const { child, next } = spawnProxy();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.send({ type: 'start', settings: settings({ tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } }) });
    const fatal = (await next('fatal')) as { code: string; message: string };
    assert.equal(fatal.code, 'TLS');
    assert.match(fatal.message, /\/nonexistent\/cert\.pem/);
    assert.equal(await exited(child), 2);
  });
});
