// A metered stream the client abandons, or that vLLM cuts: its parallel slot is freed, its usage recorded as an estimate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import { readUsageStore } from '../../src/usage/store.js';
import { tempDir } from '../helpers/fixtures.js';
import { KEY, KEY_NAME, bearer, request, sha256Hex, startPair, until } from '../helpers/upstream.js';

const chat = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true };

/** Waits for the cut stream to be over, then shows that its max_parallel slot is free: the next request gets 200. */
async function slotFreed(p: Awaited<ReturnType<typeof startPair>>): Promise<void> {
  await until(() => p.proxy.inflight() === 0, 3000, 'the cut stream to end');
  const next = await request(p.port, '/v1/chat/completions', { headers: bearer, body: { ...chat, stream: false } });
  assert.equal(next.status, 200, 'the parallel slot is free again');
  await until(() => p.proxy.inflight() === 0, 3000, 'the second request to end');
}

/** The usage store's only row, once the proxy has closed; the store's directory is removed. */
async function onlyRow(dir: string) {
  const store = await readUsageStore(dir);
  try {
    const rows = store?.rows() ?? [];
    assert.equal(rows.length, 1, JSON.stringify(rows));
    return rows[0]!;
  } finally {
    store?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test('a client that leaves a metered stream: 499, the slot is freed, tokens estimated and recorded', async () => {
  const dir = await tempDir();
  const p = await startPair(
    { keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY), policy: { maxParallel: 1, tpm: 100_000 } }], usage: { dir, track: 'limited', flushInterval: 60 } },
    { behaviour: { events: 200, intervalMs: 20 } },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ port: p.port, method: 'POST', path: '/v1/chat/completions', headers: { ...bearer, 'content-type': 'application/json' } }, (res) => {
        let events = 0;
        res.on('data', (chunk: Buffer) => {
          events += chunk.toString().split('data: ').length - 1;
          if (events >= 3) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => undefined);
      req.setTimeout(5000, () => reject(new Error('no events')));
      req.end(JSON.stringify(chat));
    });
    await slotFreed(p);
  } finally {
    await p.close();
  }
  const r = await onlyRow(dir);
  assert.equal(r.requests, 2);
  assert.equal(r.errors, 1, 'the abandoned stream counts as an error (499)');
  assert.equal(r.estimated, 1, 'the abandoned stream never got its usage event: estimated');
  assert.ok(r.completionTokens >= 3, `the events it got count as completion tokens (${r.completionTokens})`);
});

test('vLLM dying mid-stream: 502 for the record, the slot is freed, tokens estimated and recorded', async () => {
  const dir = await tempDir();
  const p = await startPair(
    { keys: [{ name: KEY_NAME, sha256Hex: sha256Hex(KEY), policy: { maxParallel: 1, budget: { tokens: 1_000_000, period: '1d' } } }], usage: { dir, track: 'limited', flushInterval: 60 } },
    { behaviour: { events: 50, intervalMs: 5, dieAfterEvents: 4 } },
  );
  try {
    const cut = await request(p.port, '/v1/chat/completions', { headers: bearer, body: chat }).catch(() => null);
    assert.ok(cut === null || !cut.text.includes('[DONE]'), 'the client sees the stream end early');
    await slotFreed(p);
  } finally {
    await p.close();
  }
  const r = await onlyRow(dir);
  assert.equal(r.requests, 2);
  assert.equal(r.errors, 1, 'the cut stream counts as an error (502)');
  assert.equal(r.estimated, 1);
  assert.ok(r.completionTokens >= 4, `the events it sent count (${r.completionTokens})`);
});
