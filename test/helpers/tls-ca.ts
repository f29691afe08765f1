/**
 * A private certificate authority for TLS tests (openssl): server certificates for loopback
 * hosts and client certificates for mTLS, all signed by one CA that tests can trust explicitly.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { execOk } from './exec.js';

export interface PemFiles {
  certPath: string;
  keyPath: string;
  /** PEM certificate. */
  cert: string;
  /** PEM private key (unencrypted PKCS#8). */
  key: string;
}

export type Ca = PemFiles;

export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '::1'];

let serial = 0;

/** File names unique within a dir, so one dir can hold several issued certs. */
function uniqueName(kind: string): string {
  serial += 1;
  return `${kind}-${process.pid}-${serial}`;
}

async function readPair(certPath: string, keyPath: string): Promise<PemFiles> {
  return { certPath, keyPath, cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
}

/** A self-signed CA certificate (EC P-256) valid for two days, written into dir. */
export async function makeCa(dir: string, commonName = 'soci-test-ca'): Promise<Ca> {
  const base = join(dir, uniqueName('ca'));
  const certPath = `${base}.pem`;
  const keyPath = `${base}-key.pem`;
  await execOk('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${commonName}`, '-keyout', keyPath, '-out', certPath,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return readPair(certPath, keyPath);
}

function sanFor(hosts: readonly string[]): string {
  return hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

async function issue(ca: Ca, dir: string, kind: string, subject: string, extensions: string): Promise<PemFiles> {
  const base = join(dir, uniqueName(kind));
  const keyPath = `${base}-key.pem`;
  const csrPath = `${base}.csr`;
  const extPath = `${base}.ext`;
  const certPath = `${base}.pem`;
  await execOk('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subject, '-keyout', keyPath, '-out', csrPath]);
  await writeFile(extPath, extensions);
  await execOk('openssl', [
    'x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', String(Date.now() * 1000 + serial),
    '-days', '2', '-sha256', '-extfile', extPath, '-out', certPath,
  ]);
  return readPair(certPath, keyPath);
}

/** A server certificate signed by ca, with subjectAltNames for hosts (IPs and DNS names). */
export function issueServerCert(ca: Ca, dir: string, hosts: readonly string[] = LOOPBACK_HOSTS): Promise<PemFiles> {
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${sanFor(hosts)}`,
  ].join('\n');
  return issue(ca, dir, 'server', `/CN=${hosts[0] ?? 'localhost'}`, `${ext}\n`);
}

/** A client certificate signed by ca, for mTLS (registry `http.tls.clientcas`). */
export function issueClientCert(ca: Ca, dir: string, cn: string): Promise<PemFiles> {
  const ext = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'].join('\n');
  return issue(ca, dir, 'client', `/CN=${cn}`, `${ext}\n`);
}
