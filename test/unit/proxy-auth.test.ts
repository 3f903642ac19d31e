// Keys: accepted forms, refusals, keys never forwarded or logged, Expect: 100-continue, reload.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { authenticate, presentedKey, sha256, toStoredKeys } from '../../src/proxy/auth.js';
import { KEY, KEY_NAME, bearer, request, sha256Hex, startPair, until } from '../helpers/upstream.js';

const chat = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }] };
const keyHeaderNames = ['authorization', 'x-api-key', 'api-key', 'x-litellm-api-key'];

/** Asserts that no header value of an upstream request contains the key. */
function assertNoKey(headers: Record<string, unknown>): void {
  for (const name of keyHeaderNames) assert.equal(headers[name], undefined, `${name} reached the upstream`);
  assert.ok(!JSON.stringify(headers).includes(KEY), 'the key reached the upstream');
}

describe('auth unit', () => {
  it('extracts the key from each header form, Bearer in any case', () => {
    assert.equal(presentedKey({ authorization: 'Bearer abc' }), 'abc');
    assert.equal(presentedKey({ authorization: 'bEaReR abc' }), 'abc');
    assert.equal(presentedKey({ authorization: 'Basic abc' }), null);
    assert.equal(presentedKey({ 'x-api-key': 'k1' }), 'k1');
    assert.equal(presentedKey({ 'api-key': 'k2' }), 'k2');
    assert.equal(presentedKey({ 'x-litellm-api-key': 'k3' }), 'k3');
    // LiteLLM's own docs send `x-litellm-api-key: Bearer KEY`.
    assert.equal(presentedKey({ 'x-litellm-api-key': 'Bearer k3' }), 'k3');
    assert.equal(presentedKey({ 'x-api-key': 'bearer k1' }), 'k1');
    assert.equal(presentedKey({ 'api-key': 'Bearer ' }), null);
    assert.equal(presentedKey({}), null);
  });

  it('matches any of several keys and names the right one', () => {
    const keys = toStoredKeys([
      { name: 'a', sha256Hex: sha256('one').toString('hex') },
      { name: 'b', sha256Hex: sha256('two').toString('hex') },
    ]);
    assert.deepEqual(authenticate({ authorization: 'Bearer two' }, keys), { ok: true, name: 'b' });
    assert.deepEqual(authenticate({ authorization: 'Bearer three' }, keys), { ok: false, reason: 'invalid' });
    assert.deepEqual(authenticate({}, keys), { ok: false, reason: 'missing' });
  });

  it('finds any key among 10,000 by its digest, and a new list (a reload) is indexed afresh', () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ name: `k${i}`, sha256Hex: sha256(`key-${i}`).toString('hex') }));
    const keys = toStoredKeys(entries);
    for (const i of [0, 1, 4999, 9999]) assert.deepEqual(authenticate({ 'x-api-key': `key-${i}` }, keys), { ok: true, name: `k${i}` });
    assert.deepEqual(authenticate({ 'x-api-key': 'key-10000' }, keys), { ok: false, reason: 'invalid' });
    // The reloaded list drops key 4999 and renames key 0: the old list's index must not answer for it.
    const reloaded = toStoredKeys([{ name: 'renamed', sha256Hex: entries[0]!.sha256Hex }, ...entries.slice(1, 4999), ...entries.slice(5000)]);
    assert.deepEqual(authenticate({ 'x-api-key': 'key-4999' }, reloaded), { ok: false, reason: 'invalid' });
    assert.deepEqual(authenticate({ 'x-api-key': 'key-0' }, reloaded), { ok: true, name: 'renamed' });
    assert.deepEqual(authenticate({ 'x-api-key': 'key-4999' }, keys), { ok: true, name: 'k4999' });
  });

  it('a digest listed twice answers with its first entry', () => {
    const digest = sha256('same');
    const keys = [
      { name: 'first', sha256: digest },
      { name: 'second', sha256: digest },
    ];
    assert.deepEqual(authenticate({ authorization: 'Bearer same' }, keys), { ok: true, name: 'first' });
  });
});

describe('auth over HTTP', () => {
  it('401 without a key and with a wrong key, OpenAI-shaped, never echoing the key', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const missing = await request(pair.port, '/v1/models');
    assert.equal(missing.status, 401);
    const body = missing.json() as { error: { type: string; code: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.code, 'invalid_api_key');
    assert.match(body.error.message, /didn't provide an API key/);

    const wrong = await request(pair.port, '/v1/models', { headers: { authorization: 'Bearer sk-wrong-secret-value-123' } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /Incorrect API key provided/);
    assert.ok(!wrong.text.includes('sk-wrong-secret-value-123'));
    assert.equal(pair.upstream.requests.length, 0);
  });

  for (const name of keyHeaderNames) {
    it(`accepts the key in ${name} and strips it before forwarding`, async (t) => {
      const pair = await startPair();
      t.after(() => pair.close());
      const headers = name === 'authorization' ? { authorization: `bearer ${KEY}` } : { [name]: KEY };
      // Also send the other forms with garbage, to check that all four are stripped.
      const extra = Object.fromEntries(keyHeaderNames.filter((n) => n !== name && n !== 'authorization').map((n) => [n, KEY]));
      const res = await request(pair.port, '/v1/chat/completions', { body: chat, headers: { ...extra, ...headers } });
      assert.equal(res.status, 200, res.text);
      const seen = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
      assertNoKey(seen.headers);
    });
  }

  it('a key in the query string (api_key, key, ...) never reaches vLLM, whose access log would print it; other parameters do', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const query = `?api_key=${KEY}&limit=5&Key=${KEY}&x%2Dapi%2Dkey=${encodeURIComponent(KEY)}&access_token=${KEY}&order=desc`;
    const res = await request(pair.port, `/v1/models${query}`, { headers: bearer });
    assert.equal(res.status, 200, res.text);
    const seen = await pair.upstream.waitForRequest((r) => r.path === '/v1/models');
    assert.equal(seen.url, '/v1/models?limit=5&order=desc');
    assert.equal((await request(pair.port, `/v1/models?key=${KEY}`, { headers: bearer })).status, 200);
    assert.equal(pair.upstream.requests.at(-1)?.url, '/v1/models');
  });

  it('Expect: 100-continue: checks the key before 100, and the key never reaches the upstream', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const body = JSON.stringify(chat);
    const socket = net.connect(pair.port, '127.0.0.1');
    t.after(() => socket.destroy());
    let received = '';
    socket.setEncoding('utf8');
    const waitText = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in ${JSON.stringify(received)}`)), 5000);
        const check = () => {
          if (pattern.test(received)) {
            clearTimeout(timer);
            socket.off('data', onData);
            resolve();
          }
        };
        const onData = (d: string) => {
          received += d;
          check();
        };
        socket.on('data', onData);
        check();
      });
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\nx-api-key: ${KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nexpect: 100-continue\r\n\r\n`,
    );
    await waitText(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    socket.write(body);
    await waitText(/HTTP\/1\.1 200 OK[\s\S]*"chat\.completion"/);
    const seen = await pair.upstream.waitForRequest((r) => r.path === '/v1/chat/completions');
    assertNoKey(seen.headers);
    assert.equal(seen.body.toString(), body);
  });

  it('Expect: 100-continue with a wrong key gets 401 without 100 Continue', async (t) => {
    const pair = await startPair();
    t.after(() => pair.close());
    const socket = net.connect(pair.port, '127.0.0.1');
    t.after(() => socket.destroy());
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer nope-nope-nope\r\ncontent-length: 10\r\nexpect: 100-continue\r\n\r\n');
    await new Promise<void>((resolve, reject) => {
      socket.once('end', resolve);
      socket.once('error', reject);
    });
    assert.match(received, /^HTTP\/1\.1 401 /);
    assert.ok(!received.includes('100 Continue'));
    assert.equal(pair.upstream.requests.length, 0);
  });

  it('auth: false needs no key and still strips one', async (t) => {
    const pair = await startPair({ auth: false, keys: [] });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/chat/completions', { body: chat, headers: { 'x-api-key': 'whatever-1234567' } });
    assert.equal(res.status, 200);
    assert.equal(pair.upstream.requests[0]?.headers['x-api-key'], undefined);
  });

  it('the access log names the key, never shows it, and the JSON form parses', async (t) => {
    for (const format of ['text', 'json'] as const) {
      const pair = await startPair({}, { format });
      t.after(() => pair.close());
      const res = await request(pair.port, '/v1/chat/completions?x=1', { body: chat, headers: bearer });
      assert.equal(res.status, 200);
      await request(pair.port, '/v1/models', { headers: { authorization: 'Bearer not-the-right-key-42' } });
      const all = pair.lines.join('\n');
      assert.ok(!all.includes(KEY), 'key in the log');
      assert.ok(!all.includes('not-the-right-key-42'), 'wrong key in the log');
      const line = pair.lines.find((l) => l.includes('/v1/chat/completions'));
      assert.ok(line, `no access line in ${all}`);
      if (format === 'text') {
        assert.match(line, new RegExp(` ${KEY_NAME} POST /v1/chat/completions model=- 200 \\d+B \\d+ms ttfb=\\d+ms id=${res.headers['x-request-id']}$`));
      } else {
        const entry = JSON.parse(line) as Record<string, unknown>;
        assert.equal(entry.msg, 'request');
        assert.equal(entry.key, KEY_NAME);
        assert.equal(entry.method, 'POST');
        assert.equal(entry.path, '/v1/chat/completions');
        assert.equal(entry.status, 200);
        assert.equal(typeof entry.bytes, 'number');
        assert.ok((entry.bytes as number) > 0);
        assert.equal(typeof entry.duration_ms, 'number');
        assert.equal(typeof entry.ttfb_ms, 'number');
        assert.equal(entry.request_id, res.headers['x-request-id']);
        assert.equal(typeof entry.time, 'string');
        const refused = pair.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.status === 401);
        assert.equal(refused?.key, '-');
      }
    }
  });

  it('a model name from the body cannot forge log lines in the text access log', async (t) => {
    // The model is the client's: with a newline in it, the supervisor (which splits the proxy's output into lines)
    // printed a line of the client's making, `llmserve | error: ...` included.
    const pair = await startPair({ modelAliases: { alias: 'test-model' } });
    t.after(() => pair.close());
    const forged = 'nope\nllmserve | error: FORGED';
    const res = await request(pair.port, '/v1/chat/completions', { body: { model: forged, messages: [] }, headers: bearer });
    assert.equal(res.status, 404);
    await until(() => pair.lines.some((l) => l.includes('/v1/chat/completions')));
    assert.ok(!pair.lines.some((l) => l.startsWith('llmserve | error: FORGED')), pair.lines.join('\n'));
    const line = pair.lines.find((l) => l.includes('/v1/chat/completions'))!;
    assert.match(line, / POST \/v1\/chat\/completions model="nope\\nllmserve \| error: FORGED" 404 /);
  });

  it('a model name of any length makes one access-log line of bounded size: clipped, so the relay never cuts it', async (t) => {
    // The supervisor cuts a relayed line over 64 KiB into pieces; a 300 KB model once made the piece after the cut a
    // line of the client's making (text) or no JSON at all (json).
    for (const format of ['text', 'json'] as const) {
      const pair = await startPair({ modelAliases: { alias: 'test-model' } }, { format });
      t.after(() => pair.close());
      const model = 'm'.repeat(300_000);
      assert.equal((await request(pair.port, '/v1/chat/completions', { body: { model, messages: [] }, headers: bearer })).status, 404);
      await until(() => pair.lines.some((l) => l.includes('/v1/chat/completions')));
      const line = pair.lines.find((l) => l.includes('/v1/chat/completions'))!;
      assert.ok(line.length < 2000, `a line of ${line.length} characters`);
      const shown = format === 'json' ? (JSON.parse(line) as { model: string }).model : /model=(\S+)/.exec(line)![1]!;
      assert.equal(shown, 'm'.repeat(256) + '...');
    }
  });

  it('Unicode line ends, C1 controls and bidi controls in a model or key name are escaped, in text and in JSON', async (t) => {
    // A reader splitting on Unicode line ends (Python's splitlines) took U+0085 or U+2028 for a new line: a forged one.
    const splitLines = (text: string) => text.split(/\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/);
    const raw = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    const models = ['x\u0085proxy  | FORGED', 'y\u009b2J', 'evil\u202egnp.exe', 'z\u2028w', 'iso\u2066late'];
    const other = 'sk-llmserve-test-TEAM-0123456789abcdef';
    // Key names are the operator's, and are not refused: LiteLLM's aliases hold spaces ("Team A").
    const keys = [
      { name: 'new\nline\x1b[31m', sha256Hex: sha256Hex(KEY) },
      { name: 'Team A', sha256Hex: sha256Hex(other) },
    ];
    for (const format of ['text', 'json'] as const) {
      const pair = await startPair({ modelAliases: { alias: 'test-model' }, keys }, { format });
      t.after(() => pair.close());
      for (const model of models) assert.equal((await request(pair.port, '/v1/chat/completions', { body: { model, messages: [] }, headers: bearer })).status, 404);
      assert.equal((await request(pair.port, '/v1/chat/completions', { body: chat, headers: { authorization: `Bearer ${other}` } })).status, 200);
      await until(() => pair.lines.filter((l) => l.includes('/v1/chat/completions')).length === models.length + 1);
      const access = splitLines(pair.lines.join('\n')).filter((l) => l.includes('/v1/chat/completions'));
      assert.equal(access.length, models.length + 1, access.join('\n'));
      for (const line of access) assert.doesNotMatch(line, raw, JSON.stringify(line));
      if (format === 'json') {
        const entries = access.map((l) => JSON.parse(l) as { model: string; key: string });
        assert.deepEqual(entries.slice(0, models.length).map((e) => e.model), models, 'the same values once parsed');
        assert.deepEqual(entries.map((e) => e.key), [...models.map(() => 'new\nline\x1b[31m'), 'Team A']);
        continue;
      }
      assert.match(access[0]!, / "new\\nline\\u001b\[31m" POST \/v1\/chat\/completions model="x\\u0085proxy {2}\| FORGED" 404 /);
      assert.match(access[1]!, / model="y\\u009b2J" /);
      assert.match(access[2]!, / model="evil\\u202egnp\.exe" /);
      assert.match(access[3]!, / model="z\\u2028w" /);
      assert.match(access[4]!, / model="iso\\u2066late" /);
      assert.match(access[5]!, / "Team A" POST \/v1\/chat\/completions model=test-model 200 /);
    }
  });

  it('reloadKeys re-reads the keys file, keeps configured keys, and survives a broken file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-keys-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'keys.yaml');
    const bob = 'sk-bob-0123456789abcdef';
    const carol = 'sk-carol-0123456789abcdef';
    await writeFile(file, `- name: bob\n  key: ${bob}\n`);
    const pair = await startPair({ keysFile: file, keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY) }, { name: 'bob', sha256Hex: sha256Hex(bob) }] });
    t.after(() => pair.close());
    const ask = async (key: string) => (await request(pair.port, '/v1/models', { headers: { authorization: `Bearer ${key}` } })).status;
    assert.equal(await ask(bob), 200);
    assert.equal(await ask(carol), 401);

    await writeFile(file, `- name: carol\n  key_sha256: ${sha256Hex(carol)}\n`);
    assert.equal(await pair.proxy.reloadKeys(), 2);
    assert.equal(await ask(carol), 200);
    assert.equal(await ask(bob), 401, 'a key removed from the file must stop working');
    assert.equal(await ask(KEY), 200, 'the configured key stays');
    assert.ok(pair.lines.some((l) => l.includes('keys loaded: 2')));

    await writeFile(file, '- name: [broken\n');
    await assert.rejects(pair.proxy.reloadKeys());
    assert.equal(await ask(carol), 200, 'a broken file keeps the old keys');
    assert.ok(pair.lines.some((l) => l.includes('error') && l.includes('keeping the 2 keys')));
    assert.ok(!pair.lines.join('\n').includes(carol));
  });

  it('a reload warns about a weak key it adds; a quiet worker (the second of several) leaves both lines to the first', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-keys-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'keys.yaml');
    await writeFile(file, `- name: bob\n  key: sk-bob-0123456789abcdef\n`);
    const first = await startPair({ keysFile: file });
    t.after(() => first.close());
    const second = await startPair({ keysFile: file }, { deps: { quiet: true } });
    t.after(() => second.close());
    await writeFile(file, `- name: dave\n  key: sk-dave-0123456789abcdef\n- name: eve\n  key: changeme\n`);
    assert.equal(await first.proxy.reloadKeys(), 3);
    assert.equal(await second.proxy.reloadKeys(), 3);
    assert.equal(first.lines.filter((l) => l.includes('keys loaded: 3 (2 from')).length, 1, first.lines.join('\n'));
    assert.equal(first.lines.filter((l) => /warn.*API key "eve" .*anyone could guess it/.test(l)).length, 1, first.lines.join('\n'));
    assert.ok(!first.lines.some((l) => l.includes('dave"')), 'no warning for a strong key');
    assert.deepEqual(second.lines.filter((l) => /keys loaded|API key/.test(l)), [], second.lines.join('\n'));
    // Errors stay in every worker: each keeps its own keys.
    await writeFile(file, '- name: [broken\n');
    await assert.rejects(second.proxy.reloadKeys());
    assert.ok(second.lines.some((l) => l.includes('error') && l.includes('keeping the 3 keys')), second.lines.join('\n'));
  });

  it('one of several proxy workers loads a reloaded keys file that adds limits without them, and says so', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-keys-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'keys.yaml');
    const bob = 'sk-bob-0123456789abcdef';
    await writeFile(file, `- name: bob\n  key: ${bob}\n`);
    const pair = await startPair({ workers: 2, keysFile: file, keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY) }] });
    t.after(() => pair.close());
    await writeFile(file, `- name: bob\n  key: ${bob}\n  rpm: 1\n`);
    assert.equal(await pair.proxy.reloadKeys(), 2);
    assert.ok(pair.lines.some((l) => /error: .*limits to bob, but the proxy runs 2 processes.*those limits are not applied.*set proxy\.workers: 1/.test(l)), pair.lines.join('\n'));
    // Served as before, without the limit that this process could not count for both (rpm: 1 would refuse the second).
    for (let i = 0; i < 3; i++) assert.equal((await request(pair.port, '/v1/models', { headers: { authorization: `Bearer ${bob}` } })).status, 200);
    // Without limits the same file reloads.
    await writeFile(file, `- name: bob\n  key: ${bob}\n- name: carol\n  key: sk-carol-0123456789abcdef\n`);
    assert.equal(await pair.proxy.reloadKeys(), 3);
    // Revoking needs no shared counter: disabled, a past expires and an allowlist reload with several workers too.
    const carol = 'sk-carol-0123456789abcdef';
    await writeFile(file, `- name: bob\n  key: ${bob}\n  disabled: true\n- name: carol\n  key: ${carol}\n  expires: 2020-01-01\n- name: dan\n  key: sk-dan-0123456789abcdefgh\n  models: [test-model]\n`);
    assert.equal(await pair.proxy.reloadKeys(), 4);
    assert.equal((await request(pair.port, '/v1/models', { headers: { authorization: `Bearer ${bob}` } })).status, 401);
    assert.equal((await request(pair.port, '/v1/models', { headers: { authorization: `Bearer ${carol}` } })).status, 401);
  });
});
