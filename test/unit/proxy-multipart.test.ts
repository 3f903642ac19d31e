// Several models: a multipart upload (OpenAI's audio endpoints) is routed by its `model` form field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMultipart, multipartModel } from '../../src/proxy/multipart.js';
import { createRouter, routeMultipart, type Router } from '../../src/proxy/router.js';
import type { ProxySettings } from '../../src/proxy/settings.js';

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
  assert.equal(field?.value, 'whisper');
  assert.equal(body.toString('latin1', field!.start, field!.end), 'whisper');
  assert.equal(multipartModel(form([['file', 'x']]), TYPE), null);
  assert.equal(multipartModel(body, 'multipart/form-data'), null, 'no boundary');
  assert.equal(multipartModel(form([['model', 'a b']], 'quoted'), 'multipart/form-data; boundary="quoted"')?.value, 'a b');
  assert.equal(isMultipart('Multipart/Form-Data; boundary=x'), true);
  assert.equal(isMultipart('application/json'), false);
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
