import { invalidArgument } from '../../errors/errors.js';

/**
 * Image references, normalised the way docker/distribution's reference package (and so
 * containerd and nerdctl) do: `busybox` is `docker.io/library/busybox:latest`.
 */
export interface Reference {
  /** Registry host as written in the reference, with port: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const HOST_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6 = /^\[[0-9A-Fa-f:.%a-zA-Z]+\]$/;

function fail(ref: string, why: string): never {
  throw invalidArgument(`image reference ${JSON.stringify(ref)}: ${why}`);
}

/** The first path element is a registry host when it looks like one (has `.` or `:`, is localhost, or has upper case). */
function splitDomain(name: string): { domain: string; rest: string } {
  const slash = name.indexOf('/');
  if (slash < 0) return { domain: DEFAULT_DOMAIN, rest: name };
  const first = name.slice(0, slash);
  const isHost = /[.:]/.test(first) || first === 'localhost' || first.startsWith('[') || first.toLowerCase() !== first;
  if (!isHost) return { domain: DEFAULT_DOMAIN, rest: name };
  return { domain: first, rest: name.slice(slash + 1) };
}

function checkDomain(ref: string, domain: string): void {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']');
    if (close < 0) fail(ref, `registry host ${domain} has an unclosed IPv6 bracket`);
    host = domain.slice(0, close + 1);
    const after = domain.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) fail(ref, `registry host ${domain} is malformed`);
    port = after === '' ? undefined : after.slice(1);
    if (!IPV6.test(host)) fail(ref, `registry host ${domain} is not a valid IPv6 address`);
  } else {
    const colon = domain.lastIndexOf(':');
    if (colon >= 0) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    if (!host.split('.').every((l) => HOST_LABEL.test(l))) fail(ref, `registry host ${domain} is not a valid host name`);
  }
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) > 65535)) fail(ref, `registry port ${JSON.stringify(port)} is not a number 0-65535`);
}

/** Splits `name[:tag][@digest]`, keeping the colon of a registry port in the name. */
function splitTagDigest(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && colon > rest.lastIndexOf(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, tag, digest };
}

/**
 * Parses and normalises an image reference. A reference with a digest keeps its tag if it
 * had one (`name:tag@digest`); one with neither gets `latest`.
 */
export function parseReference(input: string): Reference {
  const ref = input.trim();
  if (ref === '') fail(input, 'empty');
  if (/\s/.test(ref)) fail(input, 'contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) fail(input, 'must not have a URL scheme');
  const { name, tag, digest } = splitTagDigest(ref);
  if (name === '') fail(input, 'has no repository name');
  if (tag !== undefined && !TAG.test(tag)) fail(input, `tag ${JSON.stringify(tag)} is invalid (letters, digits, _ . -; at most 128)`);
  if (digest !== undefined) {
    if (!DIGEST.test(digest)) fail(input, `digest ${JSON.stringify(digest)} is invalid`);
    if (digest.startsWith('sha256:') && !SHA256.test(digest)) fail(input, `digest ${JSON.stringify(digest)} is not 64 lower-case hex digits`);
  }
  let { domain, rest } = splitDomain(name);
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  checkDomain(input, domain);
  if (rest === '') fail(input, 'has no repository path');
  if (rest.toLowerCase() !== rest) fail(input, 'repository name must be lower case');
  for (const c of rest.split('/')) {
    if (!PATH_COMPONENT.test(c)) fail(input, `repository path component ${JSON.stringify(c)} is invalid`);
  }
  if (domain === DEFAULT_DOMAIN && !rest.includes('/')) rest = OFFICIAL_REPO_PREFIX + rest;
  if (domain.length + 1 + rest.length > NAME_TOTAL_MAX) fail(input, `repository name longer than ${NAME_TOTAL_MAX} characters`);
  const out: Reference = { domain, path: rest };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  if (tag === undefined && digest === undefined) out.tag = 'latest';
  return out;
}

/** `domain/path` */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalised string: `docker.io/library/busybox:latest`, `host/repo@sha256:...`. */
export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** What to ask the registry for: the digest when pinned, else the tag. */
export function objectOf(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** A reference to another object (tag or digest) in the same repository. */
export function withObject(ref: Reference, tagOrDigest: string): Reference {
  const base: Reference = { domain: ref.domain, path: ref.path };
  if (SHA256.test(tagOrDigest)) base.digest = tagOrDigest;
  else if (TAG.test(tagOrDigest)) base.tag = tagOrDigest;
  else throw invalidArgument(`${repositoryName(ref)}: ${JSON.stringify(tagOrDigest)} is neither a tag nor a sha256 digest`);
  return base;
}

export function toReference(ref: string | Reference): Reference {
  return typeof ref === 'string' ? parseReference(ref) : ref;
}

/** Host name without brackets or port, for localhost checks and TLS server names. */
export function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colon = hostPort.lastIndexOf(':');
  return colon >= 0 && hostPort.indexOf(':') === colon ? hostPort.slice(0, colon) : hostPort;
}
