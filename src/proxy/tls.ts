// TLS material for the public port: read and checked at start, each failure naming the file at fault.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { LlmserveError } from '../errors.js';
import type { TlsInForce } from './settings.js';

/** Certificate and key contents, ready for https.createServer. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** The certificate's end of validity, as X509Certificate says it (`Feb 26 10:00:00 2027 GMT`). */
  validTo: string;
  /** Its start of validity, likewise. */
  validFrom: string;
}

/** A certificate this close to its end is warned about: a renewal that should have happened has not. */
export const EXPIRY_WARNING_DAYS = 7;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * What is wrong with the certificate's dates at `nowMs`, as a warning naming the file and the fix, or null. Why a
 * warning, not a refusal: nginx serves such a certificate too, and clients that skip verification still work; but a
 * renewal that failed (cert-manager, a Secret never reloaded) otherwise shows only as every verifying client's
 * handshake error.
 */
export function certificateDateWarning(material: Pick<TlsMaterial, 'validFrom' | 'validTo'>, file: string, nowMs: number): string | null {
  const from = Date.parse(material.validFrom);
  const to = Date.parse(material.validTo);
  const renew = 'renew it, then send llmserve SIGHUP to serve the new one';
  if (Number.isFinite(to) && nowMs >= to) return `TLS certificate ${file} expired on ${material.validTo}: clients that verify it refuse every connection; ${renew}`;
  if (Number.isFinite(from) && nowMs < from) return `TLS certificate ${file} is not valid before ${material.validFrom}: clients that verify it refuse every connection; check this machine's clock, or the certificate's dates`;
  if (Number.isFinite(to) && to - nowMs < EXPIRY_WARNING_DAYS * DAY_MS) {
    const days = Math.floor((to - nowMs) / DAY_MS);
    return `TLS certificate ${file} expires on ${material.validTo} (${days === 0 ? 'within a day' : `in ${days} day${days === 1 ? '' : 's'}`}); ${renew}`;
  }
  return null;
}

/** The fix for TLS files that start refuses; `probe` lists it with the same words. */
export const TLS_FIX = 'Fix: point proxy.tls.cert and proxy.tls.key at a PEM certificate and its own private key.';

/** Reads and parses the certificate and key files, and checks that they belong together; a TLS error names the file. */
export async function loadTls(paths: { cert: string; key: string }): Promise<TlsMaterial> {
  const cert = await read(paths.cert, 'certificate');
  const key = await read(paths.key, 'key');
  let x509: X509Certificate;
  try {
    // Why PEM only: X509Certificate reads DER too, but the server (a TLS secure context) takes PEM alone.
    if (!cert.includes('-----BEGIN')) throw new Error('no PEM block (-----BEGIN CERTIFICATE-----): a DER file? convert it: openssl x509 -inform der -in CERT -out CERT.pem');
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new LlmserveError('TLS', `TLS certificate file ${paths.cert} is not a valid PEM certificate: ${(err as Error).message}`, { details: [TLS_FIX] });
  }
  let privateKey: KeyObject;
  try {
    if (!key.includes('-----BEGIN')) throw new Error('no PEM block (-----BEGIN PRIVATE KEY-----): a DER file? convert it: openssl pkey -inform der -in KEY -out KEY.pem');
    privateKey = createPrivateKey(key);
  } catch (err) {
    // A key encrypted with a passphrase: OpenSSL asks for it, and there is no one to answer.
    const encrypted = key.includes('ENCRYPTED') || (err as NodeJS.ErrnoException).code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED';
    const why = encrypted ? 'it is encrypted with a passphrase, which llmserve cannot give; decrypt it: openssl pkey -in KEY -out KEY.plain (and keep that file private)' : (err as Error).message;
    throw new LlmserveError('TLS', `TLS key file ${paths.key} is not a valid private key: ${why}`, { details: [TLS_FIX] });
  }
  // Why here: a key of another certificate parses fine, and https.createServer's "key values mismatch" would come
  // from the proxy after start-up began, naming neither file.
  if (!x509.checkPrivateKey(privateKey)) {
    throw new LlmserveError('TLS', `TLS key file ${paths.key} is not the private key of the certificate in ${paths.cert}`, { details: [TLS_FIX] });
  }
  try {
    // What the server itself will do with them: OpenSSL refuses a pair below its security level (an RSA key under
    // 2,048 bits on Node 24, under 1,024 before), which every check above lets through; the server's own error came
    // at start-up naming no file, and after a renewal took down each proxy restarted while the files stayed so.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new LlmserveError('TLS', `TLS certificate ${paths.cert} with key ${paths.key} is refused by this Node's OpenSSL: ${(err as Error).message.replace(/^error:[0-9A-F]+:SSL routines::/, '')}`, {
      details: [`Fix: use an EC key (P-256) or an RSA key of at least 2048 bits, e.g. openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 ..., and a certificate signed with SHA-256.`],
    });
  }
  return { cert, key, validTo: x509.validTo, validFrom: x509.validFrom };
}

/**
 * loadTls, or, when the files do not load now and a certificate was in force before (a restarted proxy, a replaced
 * worker), that one, with `onFallback` told why. Why: a proxy restart (or a worker's) while the files on disk are
 * bad failed five times and took the whole service down, where a SIGHUP finding them so keeps serving.
 */
export async function loadTlsOr(paths: { cert: string; key: string }, inForce: TlsInForce | undefined, onFallback: (why: string) => void): Promise<TlsMaterial> {
  try {
    return await loadTls(paths);
  } catch (err) {
    if (inForce === undefined) throw err;
    const x509 = new X509Certificate(inForce.cert);
    onFallback(`${(err as Error).message}; serving the certificate in force before (valid until ${x509.validTo})`);
    return { cert: Buffer.from(inForce.cert), key: Buffer.from(inForce.key), validTo: x509.validTo, validFrom: x509.validFrom };
  }
}

async function read(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new LlmserveError('TLS', `TLS ${what} file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Looks at the served certificate's dates now and then; `served` changes with each reload. */
export interface CertificateWatch {
  /** Looks now: warns when the verdict changed since the last look (a day less to go is a change). */
  check(): void;
  /** A reloaded certificate: forgets the last verdict and looks at once. */
  served(material: TlsMaterial): void;
  stop(): void;
}

/**
 * Warns about the certificate's dates at start, after each reload and every `everyMs` (an hour) while serving: a pod
 * runs for months, and a renewal that never came, or was never reloaded, should show in the log before clients fail.
 */
export function watchCertificateDates(material: TlsMaterial, file: string, warn: (msg: string) => void, options: { now?: () => number; everyMs?: number } = {}): CertificateWatch {
  const now = options.now ?? Date.now;
  let current = material;
  let said: string | null = null;
  const check = () => {
    const warning = certificateDateWarning(current, file, now());
    if (warning !== null && warning !== said) warn(warning);
    said = warning;
  };
  const timer = setInterval(check, options.everyMs ?? 60 * 60 * 1000);
  timer.unref();
  check();
  return {
    check,
    served(next) {
      current = next;
      said = null;
      check();
    },
    stop: () => clearInterval(timer),
  };
}
