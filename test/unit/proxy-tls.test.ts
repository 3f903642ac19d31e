// TLS on the public port: serves https with the given cert; unreadable or invalid files are named.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LlmserveError } from '../../src/errors.js';
import { tlsFacts } from '../../src/probe/machine.js';
import { certificateDateWarning, loadTls, loadTlsOr, watchCertificateDates } from '../../src/proxy/tls.js';
import { hasOpenssl, selfSignedCert, strayKey } from '../helpers/tls.js';
import { KEY, startPair } from '../helpers/upstream.js';

/** A temporary directory with a self-signed certificate, and the proxy serving it; both gone after the test. */
async function tlsPair(t: { after: (fn: () => unknown) => void }, days?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { cert, key } = selfSignedCert(dir, days);
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

  it('plain HTTP sent to the TLS port gets a 400 that says to use https://, and one warning, not an empty reply', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const { pair } = await tlsPair(t);
    const plain = (method: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = netConnect(pair.port, '127.0.0.1', () => socket.write(`${method} /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\n\r\n`));
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
    // OpenSSL recognises GET/POST/HEAD/PUT as HTTP; the other methods reach it as a wrong TLS version.
    for (const method of ['GET', 'DELETE', 'OPTIONS', 'PATCH']) {
      const reply = await plain(method);
      assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/, method);
      const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
      assert.deepEqual([body.error.code, body.error.message], ['bad_request', "This port serves HTTPS: use https:// in the client's base URL, not http://."]);
    }
    assert.ok(pair.lines.some((l) => /plain HTTP request sent to the HTTPS port: the client must use https:\/\//.test(l)), pair.lines.join('\n'));
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

  it("a pair OpenSSL refuses (a key below its security level) is a TLS error naming both files, and a restart keeps the pair in force", { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    // RSA-512: refused at every level Node's OpenSSL runs at (RSA-1024 is refused from Node 24 on).
    const [cert, key] = [join(dir, 'weak-cert.pem'), join(dir, 'weak-key.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-keyout', key, '-out', cert, '-days', '3', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    await assert.rejects(loadTls({ cert, key }), (err: unknown) => {
      assert.ok(err instanceof LlmserveError);
      assert.equal(err.code, 'TLS');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /TLS certificate .*weak-cert\.pem with key .*weak-key\.pem is refused by this Node's OpenSSL: ee key too small$/);
      assert.match(err.details[0] ?? '', /^Fix: use an EC key/);
      return true;
    });
    // probe lists it with start's own fix.
    const facts = await tlsFacts({ cert, key }, Date.now());
    assert.match(facts.invalid ?? '', /ee key too small$/);
    assert.match(facts.invalidFix ?? '', /^Fix: use an EC key/);
    const good = selfSignedCert(dir);
    const inForce = { cert: readFileSync(good.cert, 'utf8'), key: readFileSync(good.key, 'utf8') };
    const why: string[] = [];
    const served = await loadTlsOr({ cert, key }, inForce, (w) => why.push(w));
    assert.equal(served.cert.toString(), inForce.cert);
    assert.match(why[0] ?? '', /ee key too small; serving the certificate in force before/);
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

  it('warns about a certificate that expired, is not valid yet, or ends within 7 days, naming the file and the fix', () => {
    const dates = { validFrom: 'Jan  1 00:00:00 2026 GMT', validTo: 'Mar  1 00:00:00 2026 GMT' };
    const at = (iso: string) => Date.parse(iso);
    assert.equal(certificateDateWarning(dates, '/tls/cert.pem', at('2026-02-01T00:00:00Z')), null);
    assert.equal(
      certificateDateWarning(dates, '/tls/cert.pem', at('2026-03-01T00:00:00Z')),
      'TLS certificate /tls/cert.pem expired on Mar  1 00:00:00 2026 GMT: clients that verify it refuse every connection; renew it, then send llmserve SIGHUP to serve the new one',
    );
    assert.match(certificateDateWarning(dates, '/tls/cert.pem', at('2025-12-31T23:00:00Z')) ?? '', /^TLS certificate \/tls\/cert\.pem is not valid before Jan  1 00:00:00 2026 GMT: .*check this machine's clock/);
    assert.match(certificateDateWarning(dates, '/tls/cert.pem', at('2026-02-22T00:00:01Z')) ?? '', /^TLS certificate \/tls\/cert\.pem expires on Mar  1 00:00:00 2026 GMT \(in 6 days\); renew it/);
    assert.equal(certificateDateWarning(dates, '/tls/cert.pem', at('2026-02-22T00:00:00Z')), null, '7 days left: not yet');
    assert.match(certificateDateWarning(dates, '/tls/cert.pem', at('2026-02-27T12:00:00Z')) ?? '', /expires on Mar  1 00:00:00 2026 GMT \(in 1 day\); renew it, then send llmserve SIGHUP/);
    assert.match(certificateDateWarning(dates, '/tls/cert.pem', at('2026-02-28T12:00:00Z')) ?? '', /\(within a day\)/);
  });

  it('while serving, says each new verdict on the dates once (a day less to go is new), and again after a reload', () => {
    const said: string[] = [];
    let now = Date.parse('2026-02-20T00:00:00Z');
    const watch = watchCertificateDates({ cert: Buffer.alloc(0), key: Buffer.alloc(0), validFrom: 'Jan  1 00:00:00 2026 GMT', validTo: 'Mar  1 00:00:00 2026 GMT' }, '/c.pem', (m) => said.push(m), { now: () => now });
    try {
      assert.deepEqual(said, [], 'nine days left: nothing to say');
      now = Date.parse('2026-02-25T00:00:00Z');
      watch.check();
      watch.check();
      assert.equal(said.length, 1);
      assert.match(said[0]!, /in 4 days/);
      now = Date.parse('2026-02-26T00:00:00Z');
      watch.check();
      assert.match(said[1] ?? '', /in 3 days/);
      now = Date.parse('2026-03-02T00:00:00Z');
      watch.check();
      watch.check();
      assert.equal(said.length, 3);
      assert.match(said[2]!, /expired on/);
      // The renewal is served: nothing more to say, and the watch looks at the new dates from now on.
      watch.served({ cert: Buffer.alloc(0), key: Buffer.alloc(0), validFrom: 'Mar  1 00:00:00 2026 GMT', validTo: 'Jun  1 00:00:00 2026 GMT' });
      watch.check();
      assert.equal(said.length, 3);
    } finally {
      watch.stop();
    }
  });

  it('a proxy serving a certificate that ends within a day says so at start, and not once a renewal is reloaded', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const { dir, cert, key, pair } = await tlsPair(t, 1);
    const warnings = () => pair.lines.filter((l) => /TLS certificate .*cert\.pem expires on /.test(l));
    assert.equal(warnings().length, 1, pair.lines.join('\n'));
    assert.match(warnings()[0]!, /\(within a day\); renew it, then send llmserve SIGHUP to serve the new one/);
    const renewed = selfSignedCert(await mkdtemp(join(dir, 'new-')));
    await rename(renewed.cert, cert);
    await rename(renewed.key, key);
    await pair.proxy.reloadTls();
    assert.ok(pair.lines.some((l) => /TLS certificate reloaded from /.test(l)), pair.lines.join('\n'));
    assert.equal(warnings().length, 1, 'the renewed certificate (30 days) is not warned about');
  });

  it('probe reads the same verdicts from the files: refused, warned about, or fine', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'llmserve-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const month = selfSignedCert(await mkdtemp(join(dir, 'month-')));
    const day = selfSignedCert(await mkdtemp(join(dir, 'day-')), 1);
    assert.deepEqual(await tlsFacts(month, Date.now()), {});
    assert.match((await tlsFacts(day, Date.now())).warning ?? '', /^TLS certificate .*day-.*cert\.pem expires on .*\(within a day\)/);
    assert.match((await tlsFacts(month, Date.now() + 31 * 24 * 3600 * 1000)).warning ?? '', /expired on/);
    assert.match((await tlsFacts({ cert: month.cert, key: day.key }, Date.now())).invalid ?? '', /is not the private key of the certificate/);
    assert.deepEqual(await tlsFacts(null, Date.now()), {});
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
