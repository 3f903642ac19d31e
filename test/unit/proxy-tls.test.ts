// TLS on the public port: serves https with the given cert; unreadable or invalid files are named.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LlmserveError } from '../../src/errors.js';
import { loadTls } from '../../src/proxy/tls.js';
import { hasOpenssl, selfSignedCert, strayKey } from '../helpers/tls.js';
import { KEY, startPair } from '../helpers/upstream.js';

/** A temporary directory with a self-signed certificate, and the proxy serving it; both gone after the test. */
async function tlsPair(t: { after: (fn: () => unknown) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { cert, key } = selfSignedCert(dir);
  const pair = await startPair({ tls: { cert, key } });
  t.after(() => pair.close());
  return { dir, cert, key, pair };
}

describe('tls', () => {
  it('serves https with the configured certificate', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const { pair } = await tlsPair(t);
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

  it('reloadTls (SIGHUP): a renewed certificate is served from the next handshake; a broken one is said and the old one stays', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const { dir, cert, key, pair } = await tlsPair(t);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: pair.port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerX509Certificate()!.fingerprint256);
          socket.end();
        });
        socket.on('error', reject);
      });
    const first = await served();
    assert.equal(first, new X509Certificate(await readFile(cert)).fingerprint256);
    // cert-manager renews: new files in place (written whole, then renamed over the old ones).
    const renewed = selfSignedCert(await mkdtemp(join(dir, 'new-')));
    await rename(renewed.cert, cert);
    await rename(renewed.key, key);
    assert.equal(await served(), first, 'nothing changes before the reload');
    await pair.proxy.reloadTls();
    const second = await served();
    assert.notEqual(second, first);
    assert.equal(second, new X509Certificate(await readFile(cert)).fingerprint256);
    assert.ok(pair.lines.some((l) => /TLS certificate reloaded from .*cert\.pem \(valid until /.test(l)), pair.lines.join('\n'));
    await writeFile(cert, 'not a certificate\n');
    await pair.proxy.reloadTls();
    assert.equal(await served(), second, 'a broken renewal leaves the certificate in use');
    assert.ok(pair.lines.some((l) => /TLS certificate not reloaded, the one in use stays: TLS certificate file .*cert\.pem is not a valid PEM/.test(l)), pair.lines.join('\n'));
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
