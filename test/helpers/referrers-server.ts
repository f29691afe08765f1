/**
 * An OCI 1.1 referrers endpoint in front of a registry that lacks one (distribution 2.8): a
 * proxy that records manifests with a `subject` pushed through it, answers
 * GET /v2/<name>/referrers/<digest>[?artifactType=] from those records, and reports subject
 * support with the `OCI-Subject` header on such manifest PUTs. Everything else passes through.
 */
import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { forward, listen, type ProxyLogEntry } from './fault-proxy.js';

export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ReferrersServer {
  url: string;
  host: string;
  port: number;
  /** Referrers recorded for repo and subject digest, in push order. */
  referrers(repo: string, subject: string): Descriptor[];
  /** Requests answered here or forwarded, in arrival order. */
  log(): ProxyLogEntry[];
  stop(): Promise<void>;
}

const NAME = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*';
const REFERRERS_RE = new RegExp(`^/v2/(${NAME})/referrers/([^/?]+)$`);
const MANIFEST_RE = new RegExp(`^/v2/(${NAME})/manifests/([^/?]+)$`);
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

interface ManifestJson {
  mediaType?: string;
  artifactType?: string;
  config?: { mediaType?: string };
  subject?: { digest?: string };
  annotations?: Record<string, string>;
}

/** The descriptor a referrers index lists for a manifest: artifactType falls back to the config media type (OCI 1.1). */
export function referrerDescriptor(body: Buffer, contentType: string | undefined): { subject: string; desc: Descriptor } | undefined {
  let m: ManifestJson;
  try {
    m = JSON.parse(body.toString('utf8')) as ManifestJson;
  } catch {
    return undefined;
  }
  const subject = m.subject?.digest;
  if (typeof subject !== 'string') return undefined;
  const desc: Descriptor = {
    mediaType: m.mediaType ?? contentType ?? 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
    size: body.length,
  };
  const artifactType = m.artifactType ?? m.config?.mediaType;
  if (artifactType) desc.artifactType = artifactType;
  if (m.annotations) desc.annotations = m.annotations;
  return { subject, desc };
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>, head: boolean): number {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-length': text.length, ...headers });
  res.end(head ? undefined : text);
  return head ? 0 : text.length;
}

export async function startReferrersServer(registryUrl: string): Promise<ReferrersServer> {
  const target = new URL(registryUrl);
  const agent = new Agent({ keepAlive: true });
  const records = new Map<string, Descriptor[]>();
  const log: ProxyLogEntry[] = [];
  const key = (repo: string, subject: string): string => `${repo}@${subject}`;

  const record = (repo: string, subject: string, desc: Descriptor): void => {
    const list = (records.get(key(repo, subject)) ?? []).filter((d) => d.digest !== desc.digest);
    records.set(key(repo, subject), [...list, desc]);
  };

  const answerReferrers = (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, repo: string, digest: string): void => {
    const head = req.method === 'HEAD';
    if (!DIGEST_RE.test(digest)) {
      entry.status = 400;
      entry.bytes = sendJson(res, 400, { errors: [{ code: 'DIGEST_INVALID', message: `invalid digest ${digest}` }] }, { 'content-type': 'application/json' }, head);
      return;
    }
    const artifactType = new URL(req.url ?? '/', 'http://x').searchParams.get('artifactType');
    let manifests = records.get(key(repo, digest)) ?? [];
    const headers: Record<string, string> = { 'content-type': OCI_INDEX_MEDIA_TYPE };
    if (artifactType !== null) {
      manifests = manifests.filter((d) => d.artifactType === artifactType);
      headers['oci-filters-applied'] = 'artifactType';
    }
    entry.status = 200;
    entry.bytes = sendJson(res, 200, { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests }, headers, head);
  };

  const putManifest = async (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, repo: string): Promise<void> => {
    const body = await readAll(req);
    const found = referrerDescriptor(body, req.headers['content-type']);
    forward(req, res, {
      target, agent, body, entry,
      extraHeaders: (up): Record<string, string> => {
        if (!found || up.statusCode !== 201) return {};
        record(repo, found.subject, found.desc);
        return { 'oci-subject': found.subject };
      },
    });
  };

  const deleteManifest = (repo: string, reference: string): void => {
    for (const [k, list] of records) if (k.startsWith(`${repo}@`)) records.set(k, list.filter((d) => d.digest !== reference));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry: ProxyLogEntry = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0, bytes: 0, action: 'pass', outcome: 'complete' };
    log.push(entry);
    const ref = REFERRERS_RE.exec(path);
    if (ref && (req.method === 'GET' || req.method === 'HEAD')) return answerReferrers(req, res, entry, ref[1], decodeURIComponent(ref[2]));
    const man = MANIFEST_RE.exec(path);
    if (man && req.method === 'PUT') return void putManifest(req, res, entry, man[1]).catch(() => res.destroy());
    if (man && req.method === 'DELETE') deleteManifest(man[1], decodeURIComponent(man[2]));
    forward(req, res, { target, agent, entry });
  };

  const srv = await listen(handle);
  return {
    url: srv.url, host: srv.host, port: srv.port,
    referrers: (repo, subject) => (records.get(key(repo, subject)) ?? []).map((d) => ({ ...d })),
    log: () => log.map((e) => ({ ...e })),
    stop: async () => {
      await srv.close();
      agent.destroy();
    },
  };
}
