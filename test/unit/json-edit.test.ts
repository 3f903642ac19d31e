// In-place edits of a JSON body (alias rewrite, include_usage): every other byte as the client sent it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonText, memberValues, withMember } from '../../src/util/json-edit.js';
import { planBody } from '../../src/usage/request.js';
import { decideModel } from '../../src/proxy/models.js';

test('memberValues: top-level values only, past strings that hold braces, quotes and escapes', () => {
  const text = ' { "a" : "x\\"}{" , "b":[1,{"model":"inner"}], "model" :"gpt-4o","n":-1.5e3 ,"t":true}';
  const at = memberValues(text);
  assert.deepEqual([...at.keys()], ['a', 'b', 'model', 'n', 't']);
  assert.equal(text.slice(at.get('model')!.start, at.get('model')!.end), '"gpt-4o"');
  assert.equal(text.slice(at.get('n')!.start, at.get('n')!.end), '-1.5e3');
  assert.equal(text.slice(at.get('b')!.start, at.get('b')!.end), '[1,{"model":"inner"}]');
  // A name given twice: its last value, the one JSON.parse (and Python's json) keeps.
  assert.equal(memberValues('{"model":"a","model":"b"}').get('model')!.start, 21);
});

test('withMember: replaced in place or added last; a seed past 2^53 and the client\'s spacing survive', () => {
  const body = '{"model": "gpt-4o", "seed": 9007199254740993, "messages": []}';
  assert.equal(withMember(body, 'model', '"m"'), '{"model": "m", "seed": 9007199254740993, "messages": []}');
  assert.equal(withMember('{"a":1}', 'stream_options', '{"include_usage":true}'), '{"a":1,"stream_options":{"include_usage":true}}');
  assert.equal(withMember('{ }', 'x', '1'), '{ "x":1}');
  assert.equal(jsonText(Buffer.from('\ufeff{"model":"a"}')), '{"model":"a"}');
});

test('alias rewrite and include_usage keep the rest of the body byte for byte', () => {
  const raw = Buffer.from('{"model":"gpt-4o","seed":9007199254740993,"stream":true,"messages":[{"role":"user","content":"{\\"model\\": 1}"}]}');
  const plan = planBody(raw, '/v1/chat/completions', 'm', { 'gpt-4o': 'm' });
  assert.equal(plan.body?.toString(), '{"model":"m","seed":9007199254740993,"stream":true,"messages":[{"role":"user","content":"{\\"model\\": 1}"}],"stream_options":{"include_usage":true,"continuous_usage_stats":false}}');
  const decided = decideModel(raw, 'm', { 'gpt-4o': 'm' });
  assert.ok(decided.kind === 'forward');
  assert.equal(decided.body?.toString(), raw.toString().replace('"gpt-4o"', '"m"'));
  // A body with a byte-order mark is JSON too (vLLM reads it): its model is seen.
  assert.equal(decideModel(Buffer.from(`\ufeff${raw.toString()}`), 'm', { 'gpt-4o': 'm' }).model, 'gpt-4o');
});

test('withMember agrees with JSON.parse on generated bodies (nesting, escapes, unicode, spacing)', () => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const strings = ['', '}', '{"', '\\', 'a"b', 'ключ', '😀', '\n\t', ']]'];
  const value = (depth: number): unknown => {
    const k = rand(depth > 2 ? 4 : 6);
    if (k === 0) return strings[rand(strings.length)];
    if (k === 1) return rand(1000) - 500;
    if (k === 2) return [true, false, null][rand(3)];
    if (k === 3) return rand(100) / 7;
    if (k === 4) return Array.from({ length: rand(3) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: rand(3) }, (_, i) => [`${strings[rand(strings.length)]}${i}`, value(depth + 1)]));
  };
  for (let n = 0; n < 300; n++) {
    const obj = Object.fromEntries(Array.from({ length: rand(5) }, (_, i) => [i === 2 ? 'model' : `k${i}${strings[rand(strings.length)]}`, value(0)]));
    const text = JSON.stringify(obj, null, rand(3));
    const edited = JSON.parse(withMember(text, 'model', '"served"')) as Record<string, unknown>;
    assert.deepEqual(edited, { ...obj, model: 'served' }, text);
  }
});
