// Several models: a multipart upload (OpenAI's audio endpoints) is routed by its `model` form field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideUploadModel, readUploadModel } from '../../src/proxy/models.js';
import { isMultipart, multipartModel } from '../../src/proxy/multipart.js';
import { createRouter, routeMultipart, type Router } from '../../src/proxy/router.js';
import type { ProxySettings } from '../../src/proxy/settings.js';
import { KEY, bearer, request, sha256Hex, startPair, startUpstream } from '../helpers/upstream.js';

const TYPE = 'multipart/form-data; boundary=----form123';

/** A body as curl -F / the openai SDK send it: the fields in order, a file part included. */
function form(fields: [string, string][], boundary = '----form123'): Buffer {
  const parts = fields.map(([name, value]) =>
    name === 'file'
      ? `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="model"\r\nContent-Type: audio/wav\r\n\r\n${value}\r\n`
      : `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  return Buffer.from(`${parts.join('')}--${boundary}--\r\n`, 'latin1');
}

function router(): Router {
  const settings = {
    backends: [
      { name: 'alpha', url: 'http://127.0.0.1:1' },
      { name: 'whisper', url: 'http://127.0.0.1:2' },
    ],
    modelAliases: { 'whisper-1': 'whisper' },
    state: 'ready',
  } as unknown as ProxySettings;
  return createRouter(settings, () => 0)!;
}

test('multipart: the model field is found after a file part (never the file named "model"), its bytes located', () => {
  const body = form([['file', 'RIFF\r\n--not-a-boundary\r\n\r\nmodel'], ['model', 'whisper'], ['language', 'en']]);
  const field = multipartModel(body, TYPE);
  assert.ok(field !== null && 'value' in field, JSON.stringify(field));
  assert.equal(field.value, 'whisper');
  assert.equal(body.toString('latin1', field.start, field.end), 'whisper');
  assert.equal(multipartModel(form([['file', 'x']]), TYPE), null);
  assert.equal(multipartModel(body, 'multipart/form-data'), null, 'no boundary');
  assert.equal((multipartModel(form([['model', 'a b']], 'quoted'), 'multipart/form-data; boundary="quoted"') as { value?: string } | null)?.value, 'a b');
  assert.equal(isMultipart('Multipart/Form-Data; boundary=x'), true);
  assert.equal(isMultipart('application/json'), false);
});

test('multipart: two `model` fields are refused wherever the field is read (vLLM reads the last, a check of the first would be no check)', () => {
  const two = form([['model', 'whisper-1'], ['file', 'abc'], ['model', 'sql-lora']]);
  assert.deepEqual(multipartModel(two, TYPE), { refused: 'the upload has more than one `model` field; send one' });
  const refused = { kind: 'invalid', model: '-', why: 'the upload has more than one `model` field; send one' };
  assert.deepEqual(routeMultipart(two, TYPE, router()), refused);
  assert.deepEqual(decideUploadModel(two, TYPE, 'test-model', { 'whisper-1': 'test-model' }), refused);
  assert.deepEqual(readUploadModel(two, TYPE), refused);
  assert.deepEqual(readUploadModel(form([['model', 'sql-lora'], ['file', 'abc']]), TYPE), { kind: 'forward', body: null, model: 'sql-lora' });
  assert.deepEqual(readUploadModel(form([['file', 'abc']]), TYPE), { kind: 'forward', body: null, model: '-' });
});

test('multipart: the model field is found as vLLM\'s form reader (Starlette) finds it, and a form it could read two ways is refused', () => {
  const part = (disposition: string, value: string) => `--b0\r\n${disposition}\r\n\r\n${value}\r\n`;
  const body = (...parts: string[]) => Buffer.from(parts.join('') + '--b0--\r\n', 'latin1');
  const type = 'multipart/form-data; boundary=b0';
  // Spellings python-multipart reads as name=model: spaces around `=`, capitals, a quoted value with an escape.
  for (const disposition of ['Content-Disposition: form-data; name = "model"', 'CONTENT-DISPOSITION: form-data; NAME=model', 'content-disposition:form-data;name="model"']) {
    assert.equal((multipartModel(body(part(disposition, 'sql-lora')), type) as { value?: string } | null)?.value, 'sql-lora', disposition);
  }
  // Not the model field: a file named "model" (in any UTF-8, quoted).
  assert.equal(multipartModel(body(part('Content-Disposition: form-data; name="file"; filename="model"', 'x')), type), null);
  assert.equal(multipartModel(body(part('Content-Disposition: form-data; name="file"; filename="r\xc3\xa9sum\xc3\xa9 \xe2\x80\xa6.wav"', 'x')), type), null);
  // An older client's non-ASCII file name (RFC 2231, `filename*`): not a parameter read here, so not refused.
  const olderClient = body(part("Content-Disposition: form-data; name=\"file\"; filename*=utf-8''r%C3%A9sum%C3%A9.wav", 'x'), part('Content-Disposition: form-data; name="model"', 'm'));
  assert.equal((multipartModel(olderClient, type) as { value?: string } | null)?.value, 'm');
  // A boundary given twice (Starlette takes the last), a name or a Content-Disposition given twice: refused.
  const ambiguous = { refused: "the upload gives its boundary, a part's Content-Disposition or a part's name more than once; give each once" };
  assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="model"', 'cheap')), 'multipart/form-data; boundary=b0; boundary=b1'), ambiguous);
  assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="model"; name="x"', 'cheap')), type), ambiguous);
  assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="x"\r\nContent-Disposition: form-data; name="model"', 'cheap')), type), ambiguous);
  // A backslash (python-multipart's versions end a quoted string differently around `\"`) or a charset other than
  // UTF-8 (Starlette decodes names and values with it): refused, whatever the proxy would read.
  const unreadable = { refused: "the upload's Content-Type or a part's Content-Disposition holds a backslash, a control or non-ASCII character outside quotes, or a `name*` parameter, or the form has a charset other than UTF-8; send plain parameters in UTF-8" };
  assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="model"', 'test-model'), part('Content-Disposition: form-data; name=a\\"; name="model"', 'sql-lora')), type), unreadable);
  assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="model"', 'm')), 'multipart/form-data; boundary=x\\"; boundary=b0'), unreadable);
  assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="model"', 'm')), 'multipart/form-data; boundary=b0; charset=cp037'), unreadable);
  assert.equal((multipartModel(body(part('Content-Disposition: form-data; name="model"', 'm')), 'multipart/form-data; boundary=b0; charset=UTF-8') as { value?: string } | null)?.value, 'm');
  // Read as the model field by some python-multipart (a name* form: 0.0.7-0.0.21 decode it; `<model>`: email.utils
  // unquotes angle brackets) or by Python's strip() alone (U+0085 and U+001C-U+001F are white space to Python, not to
  // JavaScript's trim()): refused, not left unchecked.
  for (const disposition of ["Content-Disposition: form-data; name*=utf-8''model", 'Content-Disposition: form-data; name=<model>', 'Content-Disposition: form-data; name="model"\x85', 'Content-Disposition: form-data; name="model"\x1f']) {
    assert.deepEqual(multipartModel(body(part(disposition, 'sql-lora')), type), unreadable, JSON.stringify(disposition));
  }
  for (const odd of ['\x85multipart/form-data; boundary=b0', 'multipart/form-data; boundary=x; boundary\x85=b0']) {
    assert.equal(isMultipart(odd), true, JSON.stringify(odd));
    assert.deepEqual(multipartModel(body(part('Content-Disposition: form-data; name="model"', 'sql-lora')), odd), unreadable, JSON.stringify(odd));
  }
  // Bytes before the first boundary: python-multipart skips a CR or LF there, the proxy would have read on to a
  // CRLF-led one (past the model part): refused. An empty body has no model.
  for (const lead of ['\n', '\r', '\r\n', 'preamble\r\n']) {
    assert.deepEqual(multipartModel(Buffer.concat([Buffer.from(lead), body(part('Content-Disposition: form-data; name="model"', 'sql-lora'))]), type), { refused: 'the upload does not begin with its first boundary (--BOUNDARY); send nothing before it' }, JSON.stringify(lead));
  }
  assert.equal(multipartModel(Buffer.alloc(0), type), null);
  // A quoted boundary with spaces around `=`, as python-multipart reads it.
  assert.equal((multipartModel(body(part('Content-Disposition: form-data; name="model"', 'm')), 'multipart/form-data; boundary = "b0"') as { value?: string } | null)?.value, 'm');
});

test('multipart: routed by model, an alias rewritten to the served name, an unknown name refused, none: the first model', () => {
  const r = router();
  const direct = routeMultipart(form([['model', 'whisper'], ['file', 'abc']]), TYPE, r);
  assert.equal(direct.kind === 'forward' && direct.target.name, 'whisper');
  assert.equal(direct.kind === 'forward' && direct.body, null, 'a served name: the body goes unchanged');

  const alias = routeMultipart(form([['file', 'abc'], ['model', 'whisper-1']]), TYPE, r);
  assert.ok(alias.kind === 'forward');
  assert.equal(alias.target.name, 'whisper');
  assert.equal(alias.model, 'whisper-1');
  assert.deepEqual(alias.body, form([['file', 'abc'], ['model', 'whisper']]));

  assert.deepEqual(routeMultipart(form([['model', 'nope']]), TYPE, r), { kind: 'unknown', model: 'nope' });
  const none = routeMultipart(form([['file', 'abc']]), TYPE, r);
  assert.equal(none.kind === 'forward' && none.target.name, 'alpha');
});

test('one model with aliases: an upload naming an alias is rewritten to the served name; an unknown name is refused', () => {
  const aliases = { 'whisper-1': 'test-model' };
  const alias = decideUploadModel(form([['model', 'whisper-1'], ['file', 'abc']]), TYPE, 'test-model', aliases);
  assert.deepEqual(alias, { kind: 'forward', body: form([['model', 'test-model'], ['file', 'abc']]), model: 'whisper-1' });
  assert.deepEqual(decideUploadModel(form([['model', 'test-model']]), TYPE, 'test-model', aliases), { kind: 'forward', body: null, model: 'test-model' });
  assert.deepEqual(decideUploadModel(form([['model', 'nope']]), TYPE, 'test-model', aliases), { kind: 'unknown', model: 'nope' });
  assert.deepEqual(decideUploadModel(form([['file', 'abc']]), TYPE, 'test-model', aliases), { kind: 'forward', body: null, model: '-' });
});

test('through the proxy: one model with an alias, and two models, route and rewrite uploads (metered keys too)', async (t) => {
  // The fake upstream has no audio route (it answers 404 Not Found): what it received is what counts.
  const upload = (model: string) => ({ body: form([['file', 'RIFF'], ['model', model]]), headers: { ...bearer, 'content-type': TYPE } });
  for (const trackAll of [false, true]) {
    const single = await startPair({ modelAliases: { 'whisper-1': 'test-model' }, ...(trackAll ? { usage: { dir: null, track: 'all', flushInterval: 5 } } : {}) });
    t.after(() => single.close());
    await request(single.port, '/v1/audio/transcriptions', upload('whisper-1'));
    const seen = single.upstream.requests.at(-1)!;
    assert.deepEqual(seen.body, form([['file', 'RIFF'], ['model', 'test-model']]), 'the alias reached vLLM as the served name');
    const unknown = await request(single.port, '/v1/audio/transcriptions', upload('nope'));
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /model_not_found/);
  }

  const other = await startUpstream({ served: 'whisper' });
  t.after(() => other.close());
  const pair = await startPair({ modelAliases: { 'whisper-1': 'whisper' } });
  t.after(() => pair.close());
  const multi = await startPair({
    backends: [
      { name: 'test-model', url: pair.upstream.url },
      { name: 'whisper', url: other.url },
    ],
    modelAliases: { 'whisper-1': 'whisper' },
  });
  t.after(() => multi.close());
  await request(multi.port, '/v1/audio/transcriptions', upload('whisper-1'));
  assert.deepEqual(other.requests.at(-1)?.body, form([['file', 'RIFF'], ['model', 'whisper']]), 'the second model got the upload');
  await request(multi.port, '/v1/audio/transcriptions', upload('whisper'));
  assert.equal(other.requests.length, 2);
  assert.match((await request(multi.port, '/v1/audio/transcriptions', upload('nope'))).text, /model_not_found/);
  assert.equal(other.requests.length, 2);
});

test('an upload whose boundary holds "json" is read as multipart, not JSON (metered keys too): rewritten and answered', async (t) => {
  const boundary = '----WebKitFormBoundaryXjSoNq7Ab';
  const type = `multipart/form-data; boundary=${boundary}`;
  for (const trackAll of [false, true]) {
    const pair = await startPair({ modelAliases: { 'whisper-1': 'test-model' }, ...(trackAll ? { usage: { dir: null, track: 'all', flushInterval: 5 } } : {}) });
    t.after(() => pair.close());
    const res = await request(pair.port, '/v1/audio/transcriptions', { body: form([['file', 'RIFF'], ['model', 'whisper-1']], boundary), headers: { ...bearer, 'content-type': type } });
    // The fake upstream has no audio route: its 404 is the answer; what it received is what counts.
    assert.equal(res.status, 404, res.text);
    assert.deepEqual(pair.upstream.requests.at(-1)?.body, form([['file', 'RIFF'], ['model', 'test-model']], boundary));
  }
});

test('several models: a LoRA adapter of the second model is routed to its vLLM as it is, listed, and allowed by name', async (t) => {
  const other = await startUpstream({ served: 'beta', behaviour: { listedModels: ['beta-sql'] } });
  t.after(() => other.close());
  const first = await startUpstream({ served: 'alpha' });
  t.after(() => first.close());
  const KEYS = { keys: [{ name: 'limited', sha256Hex: sha256Hex(KEY), policy: { models: ['beta-sql'] } }] };
  const pair = await startPair({
    backends: [
      { name: 'alpha', url: first.url },
      { name: 'beta', url: other.url, loras: ['beta-sql'] },
    ],
    modelAliases: { b: 'beta' },
    loraNames: ['beta-sql'],
    ...KEYS,
  });
  t.after(() => pair.close());
  const body = { model: 'beta-sql', messages: [{ role: 'user', content: 'hi' }] };
  const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(JSON.parse(other.requests.at(-1)!.body.toString()), body, 'sent to beta\'s vLLM as it is');
  assert.equal(first.requests.filter((r) => r.path === '/v1/chat/completions').length, 0);
  const listed = (await request(pair.port, '/v1/models', { headers: bearer })).json() as { data: { id: string; parent?: string }[] };
  assert.deepEqual(listed.data.map((m) => [m.id, m.parent]), [['beta-sql', 'beta']], 'the key sees the adapter it may use, with vLLM\'s own entry');
  // An upload names it too.
  await request(pair.port, '/v1/audio/transcriptions', { body: form([['file', 'RIFF'], ['model', 'beta-sql']]), headers: { ...bearer, 'content-type': TYPE } });
  assert.deepEqual(other.requests.at(-1)?.body, form([['file', 'RIFF'], ['model', 'beta-sql']]));
  // Counted under its own name, not `other`.
  const metrics = await request(pair.port, '/metrics', { headers: bearer });
  assert.match(metrics.text, /llmserve_requests_total\{[^}]*model="beta-sql"/);
  // The adapter of a model that gave up is gone with it.
  pair.proxy.setState('failed', 'beta');
  assert.equal((await request(pair.port, '/v1/chat/completions', { headers: bearer, body })).status, 503);
});

test('one model: its LoRA adapters are counted under their own names (usage.track: all), not as `other`', async (t) => {
  const pair = await startPair({ loraNames: ['sql-lora'], usage: { dir: null, track: 'all', flushInterval: 5 } }, { behaviour: { listedModels: ['sql-lora'] } });
  t.after(() => pair.close());
  const res = await request(pair.port, '/v1/chat/completions', { headers: bearer, body: { model: 'sql-lora', messages: [] } });
  assert.equal(res.status, 200, res.text);
  const metrics = await request(pair.port, '/metrics', { headers: bearer });
  assert.match(metrics.text, /llmserve_requests_total\{[^}]*model="sql-lora"/);
  assert.doesNotMatch(metrics.text, /model="other"/);
  // A key allowed the adapter sees it in the list the proxy answers (with vLLM's own entry), as it may use it.
  const limited = await startPair({ loraNames: ['sql-lora'], keys: [{ name: 'limited', sha256Hex: sha256Hex(KEY), policy: { models: ['sql-lora'] } }] }, { behaviour: { listedModels: ['sql-lora'] } });
  t.after(() => limited.close());
  const listed = (await request(limited.port, '/v1/models', { headers: bearer })).json() as { data: { id: string; parent?: string }[] };
  assert.deepEqual(listed.data.map((m) => [m.id, m.parent]), [['sql-lora', 'test-model']]);
});

test('several models: /v1/models lists the models still served (not one that gave up) and their aliases; none ready: 503', async (t) => {
  const other = await startUpstream({ served: 'whisper' });
  t.after(() => other.close());
  const pair = await startPair({
    backends: [
      { name: 'test-model', url: 'http://127.0.0.1:1' },
      { name: 'whisper', url: other.url },
    ],
    modelAliases: { 'whisper-1': 'whisper', 'gpt-4o': 'test-model' },
  });
  t.after(() => pair.close());
  const ids = async () => ((await request(pair.port, '/v1/models', { headers: bearer })).json() as { data: { id: string }[] }).data.map((m) => m.id);
  assert.deepEqual(await ids(), ['test-model', 'whisper', 'whisper-1', 'gpt-4o']);
  pair.proxy.setState('failed', 'test-model');
  assert.deepEqual(await ids(), ['whisper', 'whisper-1']);
  pair.proxy.setState('restarting', 'whisper');
  const none = await request(pair.port, '/v1/models', { headers: bearer });
  assert.equal(none.status, 503, none.text);
});
