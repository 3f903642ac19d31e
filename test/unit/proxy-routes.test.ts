// The allowlist, path normalisation, 404/405, health endpoints, and the 503s of a backend that is not ready.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRoutes, normalisePath } from '../../src/proxy/routes.js';
import { defaultRoutes } from '../../src/proxy/settings.js';
import { bearer, request, startPair, until } from '../helpers/upstream.js';

describe('routes unit', () => {
  it('normalises paths and refuses traversal, double slashes and encoded slashes', () => {
    assert.equal(normalisePath('/v1/models?x=1'), '/v1/models');
    assert.equal(normalisePath('/v1/chat%2Dcompletions'), '/v1/chat-completions');
    for (const bad of ['/v1/models/../../scale_elastic_ep', '/v1/./models', '//v1/models', '/v1//models', '/v1/models%2f..%2fx', '/v1%2Fmodels', '/v1/%2e%2e/x', '/v1/%zz', 'http://x/v1/models', '/v1\\models', '/v1/models#/../../scale_elastic_ep', '/v1/models?x=1#y', undefined]) {
      assert.equal(normalisePath(bad), null, String(bad));
    }
  });

  it('matches exact paths and /* prefixes only', () => {
    const table = compileRoutes(defaultRoutes);
    assert.deepEqual(table.match('/v1/chat/completions')?.methods, ['POST']);
    assert.ok(table.match('/v1/responses/resp_1'));
    assert.ok(table.match('/v1/audio/transcriptions'));
    assert.ok(table.match('/metrics'));
    for (const no of ['/v1/responsesX', '/v1/audio', '/v1/audio/', '/v1/chat/completions/x', '/health', '/scale_elastic_ep', '/v1/models/x']) {
      assert.equal(table.match(no), null, no);
    }
  });
});

describe('routes over HTTP', () => {
  it('admin and internal routes never reach vLLM, even with a valid key', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const paths: [string, string][] = [
      ['POST', '/scale_elastic_ep'],
      ['POST', '/collective_rpc'],
      ['GET', '/server_info'],
      ['GET', '/docs'],
      ['GET', '/openapi.json'],
      ['GET', '/version'],
      ['GET', '/health'],
      ['POST', '/v1/load_lora_adapter'],
      ['POST', '/sleep'],
    ];
    for (const [method, path] of paths) {
      const res = await request(pair.port, path, { method, headers: bearer, ...(method === 'POST' ? { body: {} } : {}) });
      assert.equal(res.status, 404, `${method} ${path}`);
      const body = res.json() as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'unknown_url');
      assert.equal(body.error.type, 'invalid_request_error');
    }
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('LiteLLM\'s spellings without /v1 reach the /v1 routes; nothing else is widened', async (t) => {
    const pair = await startPair({ routes: ['/v1/chat/completions', '/v1/models', '/v1/responses/*'] });
    t.after(() => pair.close());
    const chat = await request(pair.port, '/chat/completions?x=1', { headers: bearer, body: { model: 'test-model', messages: [] } });
    assert.equal(chat.status, 200, chat.text);
    assert.equal((await request(pair.port, '/models', { headers: bearer })).status, 200);
    await request(pair.port, '/responses/resp_1', { headers: bearer }); // the test upstream has no such route: it only has to arrive
    assert.deepEqual(pair.upstream.requests.map((r) => r.path), ['/v1/chat/completions', '/v1/models', '/v1/responses/resp_1']);
    // Not in the allowlist under /v1 (embeddings here), not an OpenAI route, or without a key: as before.
    assert.equal((await request(pair.port, '/embeddings', { headers: bearer, body: {} })).status, 404);
    assert.equal((await request(pair.port, '/scale_elastic_ep', { headers: bearer, body: {} })).status, 404);
    assert.equal((await request(pair.port, '/chat/completions', { body: {} })).status, 401);
    assert.equal((await request(pair.port, '/chat/completions', { headers: bearer })).status, 405);
    assert.equal(pair.upstream.requests.length, 3);
  });

  it('path traversal attempts are 404 and reach nothing', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    for (const path of ['/v1/models/../../scale_elastic_ep', '/v1/models/%2e%2e/%2e%2e/scale_elastic_ep', '/v1/models%2F..%2F..%2Fscale_elastic_ep', '//scale_elastic_ep', '/v1/responses/../../collective_rpc', '/v1/audio/..%2f..%2fcollective_rpc']) {
      const res = await request(pair.port, path, { method: 'POST', headers: bearer, body: {} });
      assert.equal(res.status, 404, path);
    }
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('405 with Allow on a known route with the wrong method', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { method: 'GET', headers: bearer });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'POST');
    const models = await request(pair.port, '/v1/models', { method: 'DELETE', headers: bearer });
    assert.equal(models.status, 405);
    assert.equal(models.headers.allow, 'GET');
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('forwards allowed routes with their query string; /metrics only with a key', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const models = await request(pair.port, '/v1/models?limit=1', { headers: bearer });
    assert.equal(models.status, 200);
    assert.equal((models.json() as { data: { id: string }[] }).data[0]?.id, 'test-model');
    assert.equal(pair.upstream.requests[0]?.url, '/v1/models?limit=1');
    assert.equal((await request(pair.port, '/metrics')).status, 401);
    const metrics = await request(pair.port, '/metrics', { headers: bearer });
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /vllm:num_requests_running/);
  });

  it('liveness answers "I\'m alive!" without a key, in every state', async (t) => {
    const pair = await startPair({ state: 'starting' });
    t.after(() => pair.close());
    for (const path of ['/health/liveness', '/health/liveliness']) {
      const res = await request(pair.port, path);
      assert.equal(res.status, 200);
      assert.equal(res.json(), "I'm alive!");
    }
    pair.proxy.setState('draining');
    assert.equal((await request(pair.port, '/health/liveness')).status, 200);
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('readiness: 200 healthy only when ready and the backend /health says 200', async (t) => {
    let clock = 0;
    const pair = await startPair({ state: 'starting' }, { deps: { now: () => clock } });
    t.after(() => pair.close());
    const starting = await request(pair.port, '/health/readiness');
    assert.equal(starting.status, 503);
    assert.equal((starting.json() as { status: string }).status, 'starting');
    assert.ok(starting.headers['retry-after']);

    pair.proxy.setState('ready');
    const ready = await request(pair.port, '/health/readiness');
    assert.equal(ready.status, 200, ready.text);
    assert.equal((ready.json() as { status: string }).status, 'healthy');

    // Within the cache window the backend is not asked again.
    const asked = pair.upstream.requests.filter((r) => r.path === '/health').length;
    pair.upstream.behaviour.healthStatus = 503;
    assert.equal((await request(pair.port, '/health/readiness')).status, 200);
    assert.equal(pair.upstream.requests.filter((r) => r.path === '/health').length, asked);

    clock += 1000;
    const sick = await request(pair.port, '/health/readiness');
    assert.equal(sick.status, 503);
    assert.equal((sick.json() as { status: string }).status, 'unhealthy');
    assert.ok(sick.headers['retry-after']);
    // Health probes stay out of the access log by default.
    assert.ok(!pair.lines.some((l) => l.includes('/health/')), pair.lines.join('\n'));
  });

  it('readiness is 503 unhealthy when the backend is down', async (t) => {
    const pair = await startPair({}, {});
    t.after(() => pair.close());
    await pair.upstream.close();
    const res = await request(pair.port, '/health/readiness');
    assert.equal(res.status, 503);
    assert.match(res.text, /unreachable/);
  });

  it('503 + Retry-After while starting or restarting, after auth', async (t) => {
    const pair = await startPair({ state: 'starting' });
    t.after(() => pair.close());
    assert.equal((await request(pair.port, '/v1/models')).status, 401);
    for (const state of ['starting', 'restarting'] as const) {
      pair.proxy.setState(state);
      const res = await request(pair.port, '/v1/models', { headers: bearer });
      assert.equal(res.status, 503);
      assert.equal(res.headers['retry-after'], '5');
      assert.equal((res.json() as { error: { code: string } }).error.code, 'service_unavailable');
      // From a keep-alive client (fetch, as OpenAI's SDKs use): closed, so that a retry may reach another replica.
      const kept = await fetch(`${pair.url}/v1/models`, { headers: bearer });
      assert.equal(kept.status, 503);
      assert.equal(kept.headers.get('connection'), 'close', state);
      await kept.text();
    }
    assert.equal(pair.upstream.requests.length, 0);
    pair.proxy.setState('ready');
    assert.equal((await request(pair.port, '/v1/models', { headers: bearer })).status, 200);
  });

  it('while draining every new request gets 503 + Retry-After, readiness included', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    assert.equal(await pair.proxy.drain(1000), 0);
    for (const path of ['/v1/models', '/health/readiness', '/nope']) {
      const res = await request(pair.port, path, { headers: bearer });
      assert.equal(res.status, 503, path);
      assert.ok(res.headers['retry-after'], path);
    }
    // From a keep-alive client (fetch, as OpenAI's SDKs use): the connection is closed, so that a retry opens a new
    // one (to a replica that serves) instead of reaching this instance again.
    const kept = await fetch(`${pair.url}/v1/chat/completions`, { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(kept.status, 503);
    assert.equal(kept.headers.get('connection'), 'close');
    await kept.text();
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('while draining a request without a valid key is still a 401, and readiness probes stay out of the log', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    assert.equal(await pair.proxy.drain(1000), 0);
    assert.equal((await request(pair.port, '/v1/models')).status, 401);
    assert.equal((await request(pair.port, '/v1/models', { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await request(pair.port, '/health/readiness')).status, 503);
    // A logged request after the probe: once its line is out, the probe's would be too.
    assert.equal((await request(pair.port, '/v1/models', { headers: bearer })).status, 503);
    await until(() => pair.lines.filter((l) => / GET \/v1\/models /.test(l)).length === 3, 5000, 'three access-log lines');
    assert.ok(!pair.lines.some((l) => l.includes('/health/readiness')), pair.lines.join('\n'));
  });

  it('a CORS pre-flight (OPTIONS with Origin and Access-Control-Request-Method) reaches vLLM without a key, on allowlisted routes only', async (t) => {
    const pair = await startPair({ routes: ['/v1/chat/completions', '/v1/models'] });
    t.after(() => pair.close());
    const cors = { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' };
    await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: cors });
    // LiteLLM's spelling without /v1 is the /v1 route here too.
    await request(pair.port, '/chat/completions', { method: 'OPTIONS', headers: cors });
    assert.deepEqual(pair.upstream.requests.map((r) => [r.method, r.path, r.headers.origin, r.headers.authorization]), [
      ['OPTIONS', '/v1/chat/completions', 'https://app.example', undefined],
      ['OPTIONS', '/v1/chat/completions', 'https://app.example', undefined],
    ]);
    // Anything else without a key is refused as before: an OPTIONS that lacks either header is no pre-flight.
    const { origin, ...noOrigin } = cors;
    assert.equal(origin, 'https://app.example');
    assert.equal((await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: noOrigin })).status, 401);
    assert.equal((await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: { origin: 'https://app.example' } })).status, 401);
    assert.equal((await request(pair.port, '/v1/chat/completions', { headers: { origin: 'https://app.example' }, body: {} })).status, 401);
    // A pre-flight to a route outside the allowlist never reaches vLLM.
    for (const path of ['/v1/embeddings', '/scale_elastic_ep']) {
      assert.equal((await request(pair.port, path, { method: 'OPTIONS', headers: cors })).status, 404, path);
    }
    assert.equal(pair.upstream.requests.length, 2);
    // models.retrieve from a page: its pre-flight passes, sent to vLLM as /v1/models (whatever the id looks like).
    for (const path of ['/v1/models/test-model', '/v1/models/org%2Fbig', '/v1/models/../../sleep']) {
      await request(pair.port, path, { method: 'OPTIONS', headers: { ...cors, 'access-control-request-method': 'GET' } });
    }
    assert.deepEqual(pair.upstream.requests.slice(2).map((r) => [r.method, r.path]), [['OPTIONS', '/v1/models'], ['OPTIONS', '/v1/models'], ['OPTIONS', '/v1/models']]);
  });

  it('an OPTIONS is a key-free pre-flight only as vLLM will get it: both headers not named in Connection, and no body', async (t) => {
    const pair = await startPair({ routes: ['/v1/chat/completions', '/v1/models'] });
    t.after(() => pair.close());
    const cors = { origin: 'https://app.example', 'access-control-request-method': 'POST' };
    // A header named in Connection is dropped on the way to vLLM, whose CORS layer would then pass the bare OPTIONS on
    // to its endpoints: without a key, that is a 401 like any other request.
    for (const listed of ['access-control-request-method', 'Origin', 'keep-alive, Access-Control-Request-Method']) {
      const res = await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: { ...cors, connection: listed } });
      assert.equal(res.status, 401, listed);
    }
    // A browser's pre-flight has no body.
    assert.equal((await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: cors, body: 'x'.repeat(1000) })).status, 401);
    assert.equal((await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: { ...cors, 'transfer-encoding': 'chunked' }, body: 'x', chunked: true })).status, 401);
    assert.equal(pair.upstream.requests.length, 0);
    // An empty body (Content-Length: 0) and a Connection header naming neither still make a pre-flight.
    await request(pair.port, '/v1/chat/completions', { method: 'OPTIONS', headers: { ...cors, connection: 'keep-alive', 'content-length': '0' } });
    assert.deepEqual(pair.upstream.requests.map((r) => [r.method, r.headers.origin, r.headers['access-control-request-method']]), [['OPTIONS', 'https://app.example', 'POST']]);
  });

  it('the proxy\'s own answers to a browser carry Access-Control-Allow-Origin by vLLM\'s policy, so a page can read a 401 or 429', async (t) => {
    const any = await startPair();
    t.after(() => any.close());
    const fromPage = { origin: 'https://app.example' };
    const denied = await request(any.port, '/v1/chat/completions', { headers: fromPage, body: {} });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['access-control-allow-origin'], '*');
    // A forwarded answer carries vLLM's own header (its CORS layer), and only that: with several models, another
    // model's vLLM may refuse an origin that the first one's list allows.
    any.upstream.behaviour.extraHeaders = { 'access-control-allow-origin': '*' };
    const served = await request(any.port, '/v1/chat/completions', { headers: { ...fromPage, ...bearer }, body: { model: 'test-model', messages: [] } });
    assert.equal(served.status, 200);
    assert.equal(served.headers['access-control-allow-origin'], '*');
    any.upstream.behaviour.extraHeaders = {};
    const refused = await request(any.port, '/v1/chat/completions', { headers: { ...fromPage, ...bearer }, body: { model: 'test-model', messages: [] } });
    assert.equal(refused.status, 200);
    assert.equal(refused.headers['access-control-allow-origin'], undefined, 'vLLM gave none: the browser must not hand the answer to the page');
    // Not a browser (no Origin): nothing added.
    assert.equal((await request(any.port, '/v1/chat/completions', { body: {} })).headers['access-control-allow-origin'], undefined);

    // vLLM started with --allowed-origins '["https://app.example"]': that origin only, echoed, with Vary.
    const listed = await startPair({ corsOrigins: ['https://app.example'] });
    t.after(() => listed.close());
    const mine = await request(listed.port, '/v1/models', { headers: fromPage });
    assert.equal(mine.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(mine.headers.vary, 'Origin');
    const other = await request(listed.port, '/v1/models', { headers: { origin: 'https://evil.example' } });
    assert.equal(other.status, 401);
    assert.equal(other.headers['access-control-allow-origin'], undefined);

    // An --allowed-origins llmserve could not read: none at all (vLLM refuses such a value itself).
    const none = await startPair({ corsOrigins: [] });
    t.after(() => none.close());
    assert.equal((await request(none.port, '/v1/models', { headers: fromPage })).headers['access-control-allow-origin'], undefined);
  });

  it('X-Request-Id: the client\'s when it is a safe token, else a new UUID; sent to vLLM, answered and logged', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const chat = { model: 'test-model', messages: [] };
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const cases: [string | undefined, RegExp | string][] = [
      ['Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8', 'Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8'],
      [undefined, uuid],
      ['has space', uuid],
      ['quote"d', uuid],
      ['x'.repeat(129), uuid],
    ];
    for (const [sent, expected] of cases) {
      const res = await request(pair.port, '/v1/chat/completions', { headers: { ...bearer, ...(sent === undefined ? {} : { 'x-request-id': sent }) }, body: chat });
      assert.equal(res.status, 200);
      const id = res.headers['x-request-id'] as string;
      if (typeof expected === 'string') assert.equal(id, expected);
      else assert.match(id, expected, String(sent));
      // vLLM got the same id (so its logs and its chatcmpl-ID name the request), never the unsafe one.
      assert.equal(pair.upstream.requests.at(-1)!.headers['x-request-id'], id);
      await until(() => pair.lines.some((l) => l.endsWith(` id=${id}`)), 5000, `the access-log line of ${id}`);
    }
    // The proxy's own answers carry it too (a 401 here), so a user can quote it.
    const denied = await request(pair.port, '/v1/chat/completions', { headers: { 'x-request-id': 'mine-1' }, body: chat });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['x-request-id'], 'mine-1');
    await until(() => pair.lines.some((l) => / - POST \/v1\/chat\/completions model=- 401 .* id=mine-1$/.test(l)), 5000, 'the 401\'s line');
  });
});
