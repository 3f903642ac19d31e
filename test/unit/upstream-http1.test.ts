import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkedReader, MAX_CHUNK_EXTENSIONS, UpstreamProtocolError, bodyFraming, keepsAlive, parseResponseHead, requestHead } from '../../src/proxy/upstream/http1.js';

const event = (n: number) => `data: {"n":${n},"text":"${'x'.repeat(n * 7)}"}\n\n`;
const frame = (s: string, ext = '') => `${Buffer.byteLength(s).toString(16)}${ext}\r\n${s}\r\n`;

/** Feeds `wire` in the given pieces; returns what came out and where the body ended. */
function feed(relay: boolean, pieces: Buffer[]): { out: string; done: boolean; restInLast: number } {
  const got: Buffer[] = [];
  const r = new ChunkedReader(relay, (b) => got.push(Buffer.from(b)));
  let done = false;
  for (const p of pieces) {
    assert.equal(done, false, 'no push after the end');
    done = r.push(p);
  }
  return { out: Buffer.concat(got).toString('latin1'), done, restInLast: r.rest };
}

/** Every way of cutting `wire` in two, and one byte at a time. */
function splits(wire: Buffer): Buffer[][] {
  const all: Buffer[][] = [[wire], Array.from(wire, (_, i) => wire.subarray(i, i + 1))];
  for (let i = 1; i < wire.length; i++) all.push([wire.subarray(0, i), wire.subarray(i)]);
  return all;
}

describe('ChunkedReader', () => {
  const chunks = [event(1), event(2), 'z', event(30)];
  const body = chunks.map((c, i) => frame(c, i === 1 ? ';ext=1' : '')).join('');
  for (const [name, last] of [['plain end', '0\r\n\r\n'], ['end with a trailer', '0\r\nx-trailer: 1\r\n\r\n'], ['end with an extension', '0;done\r\n\r\n']] as const) {
    it(`relay passes every byte but the last chunk, at every split (${name})`, () => {
      const wire = Buffer.from(body + last + 'NEXT', 'latin1');
      for (const pieces of splits(wire.subarray(0, wire.length - 4))) {
        const r = feed(true, pieces);
        assert.equal(r.done, true);
        assert.equal(r.out, body);
      }
      const whole = feed(true, [wire]);
      assert.equal(whole.restInLast, wire.length - 4, 'bytes after the body are left unread');
    });
    it(`decode yields the chunk payloads, at every split (${name})`, () => {
      const wire = Buffer.from(body + last, 'latin1');
      for (const pieces of splits(wire)) {
        const r = feed(false, pieces);
        assert.equal(r.done, true);
        assert.equal(r.out, chunks.join(''));
      }
    });
  }

  it('a chunk extension that never ends is refused past 16 KiB (relay held it all in memory), in both modes; one that fits passes', () => {
    for (const relay of [true, false]) {
      const r = new ChunkedReader(relay, () => {});
      // A backend sending `5;aaaa...` without end, 4 KiB at a time.
      assert.equal(r.push(Buffer.from('3\r\nabc\r\n5;')), false);
      const piece = Buffer.alloc(4096, 'a');
      assert.throws(() => {
        for (let sent = 0; sent <= MAX_CHUNK_EXTENSIONS + piece.length; sent += piece.length) r.push(piece);
      }, (err: unknown) => err instanceof UpstreamProtocolError && /chunk extensions over 16384 bytes/.test(err.message));
      // Each line has its own allowance: extensions just under the cap on every chunk are fine.
      const ext = ';' + 'e'.repeat(MAX_CHUNK_EXTENSIONS - 1);
      const wire = Buffer.from(frame('abc', ext) + frame('defg', ext) + '0\r\n\r\n', 'latin1');
      assert.equal(feed(relay, [wire]).done, true);
    }
  });

  it('relay holds a size line back until it is known not to be the last one', () => {
    const got: string[] = [];
    const r = new ChunkedReader(true, (b) => got.push(b.toString()));
    assert.equal(r.push(Buffer.from('3\r\nabc\r\n1')), false);
    assert.deepEqual(got, ['3\r\nabc\r\n']);
    assert.equal(r.push(Buffer.from('0\r\n')), false);
    assert.deepEqual(got.join(''), '3\r\nabc\r\n10\r\n');
  });

  it('relay flags the bytes that the last chunk follows in the same buffer, and only those', () => {
    const flagged = (pieces: string[]) => {
      const got: [string, boolean][] = [];
      const r = new ChunkedReader(true, (b, last) => got.push([b.toString(), last]));
      for (const p of pieces) r.push(Buffer.from(p));
      return got;
    };
    assert.deepEqual(flagged(['3\r\nabc\r\n', '2\r\nde\r\n0\r\n\r\n']), [['3\r\nabc\r\n', false], ['2\r\nde\r\n', true]]);
    // The last chunk in a later read: the end does not follow these bytes at once.
    assert.deepEqual(flagged(['3\r\nabc\r\n', '0\r\n\r\n']), [['3\r\nabc\r\n', false]]);
    // A size line held back across reads, then found to be the last chunk's.
    assert.deepEqual(flagged(['3\r\nabc\r\n0', '\r\n\r\n']), [['3\r\nabc\r\n', false]]);
  });

  it('an unfinished body is not done', () => {
    assert.equal(feed(true, [Buffer.from('5\r\nab')]).done, false);
    assert.equal(feed(false, [Buffer.from('5\r\nabcde\r\n')]).done, false);
  });

  it('rejects bad framing', () => {
    for (const bad of ['zz\r\n', '3\r\nabcd\r\n', '3\r\nabc\r0', '1234567890abc\r\n', '3x\r\n']) {
      assert.throws(() => new ChunkedReader(false, () => {}).push(Buffer.from(bad)), UpstreamProtocolError, bad);
    }
  });

  it('rejects what the client\'s parser would refuse in the relayed bytes (bare LF line ends, junk after a size), in both modes', () => {
    const bad = ['5\nhello\r\n0\r\n\r\n', '5\r\nhello\n0\r\n\r\n', '5 zz\r\nhello\r\n', '5 \r\nhello\r\n', '5;ext\nhello\r\n', '5\r\nhello\r\n0\r\n\n'];
    for (const wire of bad) {
      for (const relay of [true, false]) {
        assert.throws(() => feed(relay, [Buffer.from(wire)]), UpstreamProtocolError, JSON.stringify(wire));
        // Byte by byte too: the check does not depend on where the reads fall.
        assert.throws(() => feed(relay, splits(Buffer.from(wire))[1]!), UpstreamProtocolError, JSON.stringify(wire));
      }
    }
    // Whitespace before `;` is allowed (RFC 9112's BWS), in any split.
    const ok = Buffer.from('5 \t;a=b\r\nhello\r\n0\r\n\r\n');
    for (const pieces of splits(ok)) assert.equal(feed(true, pieces).out, '5 \t;a=b\r\nhello\r\n');
  });
});

describe('response head', () => {
  it("combines duplicate headers the way Node's IncomingMessage does", () => {
    const h = parseResponseHead('HTTP/1.1 200 OK\r\nContent-Type: a\r\ncontent-type: b\r\nSet-Cookie: x=1\r\nset-cookie: y=2\r\nVary: a\r\nVary:  b \r\nX-Empty:');
    assert.equal(h.statusCode, 200);
    assert.equal(h.statusMessage, 'OK');
    assert.equal(h.http10, false);
    assert.deepEqual(h.headers, { 'content-type': 'a', 'set-cookie': ['x=1', 'y=2'], vary: 'a, b', 'x-empty': '' });
  });

  it('accepts a status line without a reason and rejects garbage', () => {
    assert.equal(parseResponseHead('HTTP/1.1 204').statusMessage, '');
    assert.throws(() => parseResponseHead('HTTP/2 200 OK'), UpstreamProtocolError);
    assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\nbad header'), UpstreamProtocolError);
    assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\nbad name: 1'), UpstreamProtocolError);
    // A bare LF inside a line (a line end the backend mixed in) is refused, not folded into a value.
    assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\nx-a: 1\nx-b: 2'), UpstreamProtocolError);
  });

  it('a Content-Length list or repeated line of one value is that value; different values are refused', () => {
    assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 5, 5').headers['content-length'], '5');
    assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nContent-Length: 5').headers['content-length'], '5');
    assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6'), UpstreamProtocolError);
    assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 5, 6'), UpstreamProtocolError);
  });

  it('frames bodies by method, status, transfer-encoding and content-length', () => {
    const head = (status: number, headers: string) => parseResponseHead(`HTTP/1.1 ${status} X${headers}`);
    assert.deepEqual(bodyFraming('HEAD', head(200, '\r\ncontent-length: 5')), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', head(204, '')), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', head(304, '\r\ncontent-length: 5')), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', head(200, '\r\ntransfer-encoding: chunked\r\ncontent-length: 5')), { kind: 'chunked' });
    assert.deepEqual(bodyFraming('GET', head(200, '\r\ntransfer-encoding: gzip')), { kind: 'close' });
    assert.deepEqual(bodyFraming('GET', head(200, '\r\ncontent-length: 5')), { kind: 'length', length: 5 });
    assert.deepEqual(bodyFraming('GET', head(200, '\r\ncontent-length: 5, 5')), { kind: 'length', length: 5 });
    assert.deepEqual(bodyFraming('GET', head(200, '')), { kind: 'close' });
    assert.throws(() => bodyFraming('GET', head(200, '\r\ncontent-length: 5, 6')), UpstreamProtocolError);
    assert.throws(() => bodyFraming('GET', head(200, '\r\ncontent-length: -1')), UpstreamProtocolError);
  });

  it('keeps HTTP/1.1 connections alive unless told to close, HTTP/1.0 only when asked', () => {
    assert.equal(keepsAlive(parseResponseHead('HTTP/1.1 200 OK')), true);
    assert.equal(keepsAlive(parseResponseHead('HTTP/1.1 200 OK\r\nConnection: Close')), false);
    assert.equal(keepsAlive(parseResponseHead('HTTP/1.0 200 OK')), false);
    assert.equal(keepsAlive(parseResponseHead('HTTP/1.0 200 OK\r\nconnection: keep-alive')), true);
  });
});

describe('request head', () => {
  it('writes the request line, repeated headers and chunked framing', () => {
    assert.equal(requestHead('POST', '/v1/x?a=1', { host: 'b:1', 'x-a': ['1', '2'], n: 3 }, true), 'POST /v1/x?a=1 HTTP/1.1\r\nhost: b:1\r\nx-a: 1\r\nx-a: 2\r\nn: 3\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n');
    assert.equal(requestHead('POST', '/', { 'transfer-encoding': 'chunked' }, true), 'POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n');
  });
  it('refuses a value or target that would split the request', () => {
    assert.throws(() => requestHead('GET', '/a b', {}, false), TypeError);
    assert.throws(() => requestHead('GET', '/a', { x: 'a\r\nevil: 1' }, false), TypeError);
  });
});
