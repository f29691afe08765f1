/** Self-signed certificates for TLS test services (openssl). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execOk } from './exec.js';

export interface CertPair {
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 and localhost, written into dir. */
export async function selfSignedCert(dir: string, commonName = '127.0.0.1'): Promise<CertPair & { certPath: string; keyPath: string }> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await execOk('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${commonName}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyPath, '-out', certPath,
  ]);
  return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), certPath, keyPath };
}
