import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate for 127.0.0.1 / localhost, signed by its own key (a test server's: clients must trust it as is). */
export interface SelfSignedCert {
  key: string;
  cert: string;
}

let made: SelfSignedCert | undefined;

/** One self-signed P-256 certificate per process, made with the system's `openssl` (Node cannot make certificates). */
export function selfSignedCert(): SelfSignedCert {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), 'dbm-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert],
      { stdio: 'ignore' },
    );
    made = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
    return made;
  } catch (error) {
    throw new Error(`the TLS test servers need the openssl command to make their certificate: ${(error as Error).message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
