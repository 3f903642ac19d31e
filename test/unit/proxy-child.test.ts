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

  it('writes the head with the first event, and the last event with the end, when the backend sent them together', async (t) => {
    // A backend that writes its head with the first event in one write, and [DONE] with the last chunk in another
    // (the proxy then reads each pair at once). Written apart by the proxy, this client (another process) read
    // each pair apart about half the time: ten streams in a row together is 1 in 1,000 by chance.
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    const backend = net.createServer((socket) => {
      let request = '';
      socket.on('data', (d: Buffer) => {
        request += d.toString('latin1');
        const at = request.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(request)?.[1] ?? 0);
        if (at < 0 || request.length < at + 4 + length) return;
        request = '';
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n${chunk('data: {"n":1}\n\n')}`);
        setTimeout(() => socket.write(`${chunk('data: {"n":2}\n\n')}`), 5);
        setTimeout(() => socket.write(`${chunk('data: [DONE]\n\n')}0\r\n\r\n`), 10);
      });
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    t.after(() => backend.close());
    const { child, next } = spawnProxy();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.send({ type: 'start', settings: settings({ backendUrl: `http://127.0.0.1:${(backend.address() as net.AddressInfo).port}`, state: 'ready' }) });
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
      assert.match(reads[0] ?? '', /^HTTP\/1\.1 200 [^]*\r\n\r\n[0-9a-f]+\r\ndata: \{"n":1\}\n\n\r\n/, `stream ${i}: the head came apart from the first event: ${JSON.stringify(reads.slice(0, 2))}`);
      assert.match(reads.join(''), /data: \{"n":2\}\n\n/);
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
