// Idle client connections: kept open for `proxy.keep_alive_timeout` seconds (a load balancer in front must close them
// first), announced in each answer's Keep-Alive header, and then closed by the proxy.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { KEY, startPair, until } from '../helpers/upstream.js';

/** One keep-alive request on a raw connection: the answer's head, when (performance.now) it was sent, and when the proxy closed it. */
async function idleConnection(port: number): Promise<{ head: string; sentAt: number; closed: () => number | null; socket: net.Socket }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  let answeredAt = 0;
  let closedAt: number | null = null;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    if (answeredAt === 0 && text.includes('"object":"list"')) answeredAt = performance.now();
  });
  socket.on('close', () => (closedAt = performance.now()));
  const sentAt = performance.now();
  socket.write(`GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\n\r\n`);
  await until(() => answeredAt > 0, 10_000, `the model list:\n${text}`);
  return { head: text.split('\r\n\r\n')[0]!, sentAt, closed: () => closedAt, socket };
}

it('proxy.keep_alive_timeout: an idle connection is announced with it and closed after it', async (t) => {
  const pair = await startPair({ keepAliveTimeout: 1 });
  t.after(() => pair.close());
  const c = await idleConnection(pair.port);
  t.after(() => c.socket.destroy());
  assert.match(c.head, /\r\nkeep-alive: timeout=1(\r\n|$)/i, c.head);
  // Closed by the proxy's timer: not at once, and long before the default's 65 s. Timed from the request's send, which
  // comes before the timer starts (at the answer's end), so that a test process slow to read the answer cannot make
  // the interval look short.
  await until(() => c.closed() !== null, 15_000, 'the proxy to close the idle connection');
  assert.ok(c.closed()! - c.sentAt >= 950, `closed ${Math.round(c.closed()! - c.sentAt)} ms after the request`);
});

it('the default keeps an idle connection 65 s, above the 60 s idle timeout of most load balancers', async (t) => {
  const pair = await startPair();
  t.after(() => pair.close());
  const c = await idleConnection(pair.port);
  t.after(() => c.socket.destroy());
  assert.match(c.head, /\r\nkeep-alive: timeout=65(\r\n|$)/i, c.head);
  assert.equal(c.closed(), null);
});
