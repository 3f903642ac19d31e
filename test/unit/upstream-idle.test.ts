// The upstream pool's idle time follows vLLM's keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE), so that vLLM never closes a
// connection the pool may still hand out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamIdleMs } from '../../src/proxy/upstream/idle.js';
import { bearer, request, startPair } from '../helpers/upstream.js';

describe('upstreamIdleMs', () => {
  it('keeps 4 s with vLLM default keep-alive (5 s), and with a longer one', () => {
    assert.equal(upstreamIdleMs([]), 4000);
    assert.equal(upstreamIdleMs([undefined]), 4000);
    assert.equal(upstreamIdleMs(['5']), 4000);
    assert.equal(upstreamIdleMs(['300']), 4000);
  });

  it('stays below a shorter keep-alive: 80 % of it', () => {
    assert.equal(upstreamIdleMs(['4']), 3200);
    assert.equal(upstreamIdleMs(['2']), 1600);
    assert.equal(upstreamIdleMs(['1']), 800);
  });

  it('keeps no connection when vLLM closes each one after its response (0 or less)', () => {
    assert.equal(upstreamIdleMs(['0']), 0);
    assert.equal(upstreamIdleMs(['-3']), 0);
  });

  it('follows the shortest of several models', () => {
    assert.equal(upstreamIdleMs([undefined, '2', '10']), 1600);
    assert.equal(upstreamIdleMs(['600', undefined]), 4000);
  });

  it('reads a value as Python int() does, and one int() refuses as the default', () => {
    assert.equal(upstreamIdleMs([' 2 ']), 1600);
    assert.equal(upstreamIdleMs(['+2']), 1600);
    assert.equal(upstreamIdleMs(['1_0']), 4000);
    assert.equal(upstreamIdleMs(['0_1']), 800);
    for (const refused of ['', '2.5', 'two', '2s', '_2', '2_']) assert.equal(upstreamIdleMs([refused]), 4000, refused);
  });
});

describe('the proxy with upstreamIdleMs', () => {
  it('0: each request goes over a new upstream connection', async (t) => {
    const pair = await startPair({ upstreamIdleMs: 0 });
    t.after(() => pair.close());
    assert.equal((await request(pair.port, '/v1/models', { headers: bearer })).status, 200);
    assert.equal((await request(pair.port, '/v1/models', { headers: bearer })).status, 200);
    const [a, b] = pair.upstream.requests;
    assert.ok(a && b);
    assert.notEqual(a.remotePort, b.remotePort, 'the second request reused the first one\'s upstream connection');
  });
});
