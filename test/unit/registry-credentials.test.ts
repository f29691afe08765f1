import t from 'tap';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import type { SociError } from '../../errors/errors.js';
import { join } from 'node:path';
import {
  chainCredentials, defaultCredentials, dockerConfigCredentials, dockerConfigKey, helperFor, inlineAuth, parseDockerConfig, parseUserPass, runCredentialHelper, staticCredentials,
} from '../../fetcher/registry/credentials.js';
import { tempDirFor } from '../helpers/tmp.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

t.test('--user USER:PASS', async (t) => {
  t.same(parseUserPass('alice:pa:ss'), { username: 'alice', password: 'pa:ss' });
  t.throws(() => parseUserPass('alice'), /expected USER:PASS/);
  t.throws(() => parseUserPass(':x'), /expected USER:PASS/);
  const s = staticCredentials({ username: 'u', password: 'p' }, ['a.com']);
  t.same(await s.get('a.com'), { username: 'u', password: 'p' });
  t.equal(await s.get('b.com'), undefined);
  const chain = chainCredentials(s, staticCredentials({ username: 'v', password: 'q' }));
  t.same(await chain.get('b.com'), { username: 'v', password: 'q' });
});

t.test('docker config auths: base64 auth, username/password, URL keys, Docker Hub key', async (t) => {
  const cfg = parseDockerConfig(JSON.stringify({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:hubpw') },
      'reg.example.com:5000': { auth: b64('bob:s:e:c') },
      'https://other.example.com/v2/': { username: 'carol', password: 'pw' },
      'bad.example.com': { auth: b64('nocolon') },
    },
  }), 'config.json');
  t.same(inlineAuth(cfg, 'docker.io', 'f'), { username: 'hub', password: 'hubpw' });
  t.same(inlineAuth(cfg, 'reg.example.com:5000', 'f'), { username: 'bob', password: 's:e:c' });
  t.same(inlineAuth(cfg, 'other.example.com', 'f'), { username: 'carol', password: 'pw' });
  t.equal(inlineAuth(cfg, 'none.example.com', 'f'), undefined);
  try {
    inlineAuth(cfg, 'bad.example.com', 'f');
    t.fail('accepted');
  } catch (e) {
    t.match((e as Error).message, /malformed auth field/);
    t.notMatch((e as Error).message, /nocolon/, 'secret not in message');
  }
  t.throws(() => parseDockerConfig('[1]', 'cfg.json'), /cfg.json: not a valid docker config/);
  t.equal(dockerConfigKey('docker.io'), 'https://index.docker.io/v1/');
  t.equal(helperFor({ credsStore: 'desktop', credHelpers: { 'a.com': 'ecr-login' } }, 'a.com'), 'ecr-login');
  t.equal(helperFor({ credsStore: 'desktop', credHelpers: { 'a.com': 'ecr-login' } }, 'b.com'), 'desktop');
  t.equal(helperFor({}, 'b.com'), undefined);
});

async function fakeHelper(dir: string): Promise<NodeJS.ProcessEnv> {
  const script = join(dir, 'docker-credential-test');
  // Answers for two servers; logs what it was asked so the test sees the protocol was followed.
  await writeFile(script, `#!/bin/sh
[ "$1" = get ] || exit 3
read server
echo "$server" >> "${join(dir, 'asked.log')}"
case "$server" in
  helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"helper-user","Secret":"helper-secret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"hub-helper","Secret":"hub-secret"}' ;;
  broken.example.com) echo 'not json'; exit 0 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`);
  await chmod(script, 0o755);
  return { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` };
}

t.test('credential helpers via docker-credential-<name> get', async (t) => {
  const dir = await tempDirFor(t);
  const env = await fakeHelper(dir);
  t.same(await runCredentialHelper('test', 'helped.example.com', env), { username: 'helper-user', password: 'helper-secret' });
  t.equal(await runCredentialHelper('test', 'unknown.example.com', env), undefined);
  await t.rejects(runCredentialHelper('test', 'broken.example.com', env), /not the expected JSON/);
  await t.rejects(runCredentialHelper('absent', 'x', env), /docker-credential-absent: cannot run: ENOENT/);

  const cfgPath = join(dir, 'config.json');
  await writeFile(cfgPath, JSON.stringify({
    credsStore: 'test',
    credHelpers: { 'nohelper.example.com': 'absent' },
    auths: { 'inline.example.com': { auth: b64('in:line') } },
  }));
  const src = dockerConfigCredentials({ path: cfgPath, env });
  t.same(await src.get('helped.example.com'), { username: 'helper-user', password: 'helper-secret' });
  t.same(await src.get('docker.io'), { username: 'hub-helper', password: 'hub-secret' });
  t.same(await src.get('inline.example.com'), { username: 'in', password: 'line' }, 'helper has none: inline auth');
  t.equal(await src.get('nothing.example.com'), undefined);
  const err = await src.get('nohelper.example.com').catch((e: unknown) => e);
  t.equal((err as SociError).kind, 'failed-precondition');
  const asked = (await readFile(join(dir, 'asked.log'), 'utf8')).trim().split('\n');
  t.ok(asked.includes('https://index.docker.io/v1/'), 'Docker Hub asked under its legacy key');

  const chain = defaultCredentials('cli:pw', { path: cfgPath, env });
  t.same(await chain.get('helped.example.com'), { username: 'cli', password: 'pw' }, '--user wins');
  t.equal(await dockerConfigCredentials({ path: join(dir, 'missing.json'), env }).get('a.com'), undefined);
  t.equal(await dockerConfigCredentials({ env: { ...env, DOCKER_CONFIG: dir } }).get('inline.example.com').then((c) => c?.username), 'in');
});
