import { readFileSync } from 'node:fs';

/** Version from package.json, read once at start-up of the CLI process. */
export function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  try {
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export function buildToolIdentifier(): string {
  return `soci-snapshotter-node v${packageVersion()}`;
}
