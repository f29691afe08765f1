import { SociError, type ErrorKind } from '../../errors/errors.js';

/**
 * HTTP answers that are errors, as SociErrors whose message carries the status and the
 * registry's own error code and message (distribution's `{"errors":[{code,message}]}` body).
 */
export function kindForStatus(status: number): ErrorKind {
  if (status === 404) return 'not-found';
  if (status === 401 || status === 403) return 'failed-precondition';
  if (status === 400 || status === 413 || status === 416 || status === 422) return 'invalid-argument';
  if (status >= 500 || status === 429) return 'unavailable';
  return 'failed-precondition';
}

/** `CODE: message; CODE2: message2` from a distribution error body, or a short plain-text excerpt. */
export function registryErrorSummary(body: Buffer): string {
  const text = body.toString('utf8').trim();
  if (text === '') return '';
  try {
    const j = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(j.errors) && j.errors.length > 0) {
      return j.errors
        .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x !== '').join(': '))
        .filter(Boolean)
        .join('; ');
    }
  } catch {
    // not JSON: fall through to the text excerpt
  }
  return text.replace(/\s+/g, ' ').slice(0, 200);
}

export function statusError(status: number, what: string, body: Buffer): SociError {
  const summary = registryErrorSummary(body);
  return new SociError(kindForStatus(status), `${what}: HTTP ${status}${summary ? ` ${summary}` : ''}`);
}
