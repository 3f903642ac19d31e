// TLS on the public port: serves https with the given cert; unreadable or invalid files are named.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LlmserveError } from '../../src/errors.js';
import { loadTls } from '../../src/proxy/tls.js';
import { hasOpenssl, selfSignedCert, strayKey } from '../helpers/tls.js';
import { KEY, startPair } from '../helpers/upstream.js';

describe('tls', () => {
  it('serves https with the configured certificate', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { cert, key } = selfSignedCert(dir);
    const pair = await startPair({ tls: { cert, key } });
    t.after(() => pair.close());
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: pair.port, path: '/v1/models', rejectUnauthorized: false, agent: false, headers: { authorization: `Bearer ${KEY}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    assert.equal(status, 200);
  });

  it('names the unreadable or invalid file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const bad = join(dir, 'bad.pem');
    await writeFile(bad, 'not a certificate\n');
    await assert.rejects(startPair({ tls: { cert: join(dir, 'missing.pem'), key: bad } }), (err: unknown) => {
      assert.ok(err instanceof LlmserveError);
      assert.equal(err.code, 'TLS');
      assert.match(err.message, /missing\.pem/);
      return true;
    });
    await assert.rejects(startPair({ tls: { cert: bad, key: bad } }), /TLS certificate file .*bad\.pem is not a valid/);
  });

  it('names a key that belongs to another certificate (not "key values mismatch" from the proxy)', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { cert, key } = selfSignedCert(dir);
    const otherKey = strayKey(dir);
    await assert.rejects(loadTls({ cert, key: otherKey }), (err: unknown) => {
      assert.ok(err instanceof LlmserveError);
      assert.equal(err.code, 'TLS');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /TLS key file .*other-key\.pem is not the private key of the certificate in .*cert\.pem$/);
      assert.match(err.details[0] ?? '', /^Fix: /);
      return true;
    });
    await loadTls({ cert, key });
  });

  it('refuses a DER certificate or key (the server takes PEM alone) and an encrypted key, each with the command that fixes it', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { cert, key } = selfSignedCert(dir);
    const [derCert, derKey, encrypted] = [join(dir, 'cert.der'), join(dir, 'key.der'), join(dir, 'enc.pem')];
    execFileSync('openssl', ['x509', '-in', cert, '-outform', 'der', '-out', derCert], { stdio: 'ignore' });
    execFileSync('openssl', ['pkey', '-in', key, '-outform', 'der', '-out', derKey], { stdio: 'ignore' });
    execFileSync('openssl', ['pkey', '-in', key, '-aes256', '-passout', 'pass:secret', '-out', encrypted], { stdio: 'ignore' });
    await assert.rejects(loadTls({ cert: derCert, key }), /TLS certificate file .*cert\.der is not a valid PEM certificate: no PEM block .* openssl x509 -inform der/);
    await assert.rejects(loadTls({ cert, key: derKey }), /TLS key file .*key\.der is not a valid private key: no PEM block .* openssl pkey -inform der/);
    await assert.rejects(loadTls({ cert, key: encrypted }), /TLS key file .*enc\.pem is not a valid private key: it is encrypted with a passphrase, .* openssl pkey -in KEY -out KEY\.plain/);
  });
});
