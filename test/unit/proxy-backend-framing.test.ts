// A backend that breaks HTTP/1.1 framing must not be able to split the client's connection, or leak its status text.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createProxy } from '../../src/proxy/server.js';
import { proxySettings } from '../../src/proxy/settings.js';
import { once } from 'node:events';
import { KEY, KEY_NAME, memoryLogger, sha256Hex } from '../helpers/upstream.js';
import { withTimeout } from '../helpers/wait.js';

/** A backend that answers every request with `raw`, as given (and then closes the connection, with `thenClose`). */
async function rawBackend(raw: string, thenClose = false): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.once('data', () => {
      s.write(raw);
      if (thenClose) s.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends one GET /v1/models on a fresh connection; resolves with the bytes of the whole answer (or up to the close). */
async function rawGet(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.write(`GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\n\r\n`);
  await new Promise<void>((resolve) => {
    const check = () => {
      if (/\r\n0\r\n\r\n$/.test(text) || /content-length: (\d+)\r\n/i.test(text)) {
        const m = /content-length: (\d+)\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/i.exec(text);
        if (m === null || Buffer.byteLength(m[2]!, 'latin1') >= Number(m[1])) resolve();
      }
    };
    socket.on('data', check);
    socket.on('close', () => resolve());
  });
  socket.destroy();
  return text;
}

async function proxyFor(backendUrl: string, maxBodyBytes?: number) {
  const { logger } = memoryLogger();
  return createProxy(proxySettings({ backendUrl, servedModelName: 'm', keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY) }], ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }) }), { logger });
}

/** The whole answer to one GET through a proxy in front of a backend that answers `raw` (closed by the test's end). */
async function answerThrough(t: TestContext, raw: string, thenClose = false): Promise<string> {
  const backend = await rawBackend(raw, thenClose);
  const proxy = await proxyFor(backend.url);
  t.after(async () => {
    await proxy.close();
    await backend.close();
  });
  return rawGet(proxy.port);
}

describe('backend framing', () => {
  it('Content-Length with Transfer-Encoding: the body is read as chunked and the stale length never reaches the client', async (t) => {
    const injected = 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\nx-injected: yes\r\n\r\nINJECTED!!';
    const text = await answerThrough(t, `HTTP/1.1 200 OK\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n${injected.length.toString(16)}\r\n${injected}\r\n0\r\n\r\n`);
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(head, /content-length: 0/i, `the stale length was relayed:\n${text}`);
    // The backend's body reaches the client as one chunked body (the fake response inside it is only body bytes).
    assert.match(head, /transfer-encoding: chunked/i);
    assert.ok(text.endsWith('\r\n0\r\n\r\n'), text);
  });

  it('a backend header Node refuses: a 502 with its own reason phrase, not the backend\'s', async (t) => {
    const text = await answerThrough(t, 'HTTP/1.1 200 Totally Fine\r\nx-bad: a\u0001b\r\ncontent-length: 2\r\n\r\nok');
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, text);
  });

  it('a backend that sends a head with a length and dies before the body: the client gets a 502, not an empty reply', async (t) => {
    const text = await answerThrough(t, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n', true);
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, text);
    assert.match(text, /"code":"bad_gateway"/, text);
  });

  it('a backend that dies part-way through a body with a length: the client sees the answer cut, never a clean end', async (t) => {
    const text = await answerThrough(t, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"partial":', true);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/, text);
    assert.match(text, /content-length: 100\r\n/i, text);
    assert.ok(text.endsWith('{"partial":'), `the client got more than the backend sent:\n${text}`);
  });

  it('a head whose lines end in a bare LF: a 502 at once, not a 504 after the first-byte timeout', async (t) => {
    const text = await answerThrough(t, 'HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: 2\n\nok');
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, text);
  });

  it('a Content-Length list of one value reaches the client as that one value', async (t) => {
    const text = await answerThrough(t, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2, 2\r\n\r\nok');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/, text);
    assert.match(text, /\r\ncontent-length: 2\r\n/i, text);
    assert.ok(text.endsWith('\r\n\r\nok'), text);
  });

  it('a backend that answers before reading the upload: the client sends its body whole, reads the answer, and the connection closes', async (t) => {
    // A server that refuses a body unread (as a `vllm.command` other than vLLM may): it stops reading, answers 413
    // and closes, while the proxy waits for that socket to take more of the client's upload.
    const sockets = new Set<net.Socket>();
    const backend = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.once('data', () => {
        s.pause();
        setTimeout(() => s.end('HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno'), 200);
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const size = 32 * 1024 * 1024;
    const proxy = await proxyFor(`http://127.0.0.1:${(backend.address() as net.AddressInfo).port}`, 2 * size);
    t.after(async () => {
      await proxy.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => backend.close(() => resolve()));
    });
    // Half-open allowed: the client goes on sending its body after the proxy's FIN, as HTTP clients do.
    const client = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    let failure: string | null = null;
    client.on('data', (c: Buffer) => (text += c.toString('latin1')));
    client.on('error', (err: NodeJS.ErrnoException) => (failure = err.code ?? err.message));
    client.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`);
    const piece = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const written = new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < size) {
          sent += piece.length;
          if (!client.write(piece)) return void client.once('drain', pump);
        }
        client.end(resolve);
      };
      pump();
    });
    // Before the fix the upload stalled (the proxy never read past what that socket took) until keep_alive_timeout
    // (65 s) reset the connection.
    await withTimeout(written, 15_000, 'the proxy to read the whole upload');
    await withTimeout(once(client, 'close'), 5000, 'the connection to close');
    assert.equal(failure, null, `the client's upload failed (${failure}) after ${sent} bytes`);
    assert.equal(sent, size);
    assert.match(text, /^HTTP\/1\.1 413 Payload Too Large\r\n/, text);
    assert.match(text, /\r\nconnection: close\r\n/i, text);
    assert.ok(text.endsWith('\r\n\r\nno'), text);
  });
});
