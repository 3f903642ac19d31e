// TLS material for the public port: read and checked at start, each failure naming the file at fault.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LlmserveError } from '../errors.js';

/** Certificate and key contents, ready for https.createServer. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** Reads and parses the certificate and key files; throws a TLS error that names the file. */
export async function loadTls(paths: { cert: string; key: string }): Promise<TlsMaterial> {
  const cert = await read(paths.cert, 'certificate');
  const key = await read(paths.key, 'key');
  try {
    new X509Certificate(cert);
  } catch (err) {
    throw new LlmserveError('TLS', `TLS certificate file ${paths.cert} is not a valid PEM certificate: ${(err as Error).message}`);
  }
  try {
    createPrivateKey(key);
  } catch (err) {
    throw new LlmserveError('TLS', `TLS key file ${paths.key} is not a valid private key: ${(err as Error).message}`);
  }
  return { cert, key };
}

async function read(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new LlmserveError('TLS', `TLS ${what} file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
