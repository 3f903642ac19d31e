// Throwaway TLS material for tests, made with the openssl CLI when it is installed.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** True when the openssl CLI is there to make a throwaway certificate. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A self-signed certificate for localhost and its key (EC P-256), written into `dir`; valid for 30 days unless told
 * (under 7, the proxy warns that it expires soon).
 */
export function selfSignedCert(dir: string, days = 30): { cert: string; key: string } {
  const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', String(days), '-subj', '/CN=localhost'], { stdio: 'ignore' });
  return { cert, key };
}

/** A private key of no certificate, written into `dir` as other-key.pem. */
export function strayKey(dir: string): string {
  const key = path.join(dir, 'other-key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', key], { stdio: 'ignore' });
  return key;
}
