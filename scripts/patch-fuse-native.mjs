#!/usr/bin/env node
/**
 * postinstall: applies third_party/fuse-native/nanosecond-times.patch to the installed
 * fuse-native and rebuilds its addon from source, so that stat times reach the kernel with
 * nanoseconds (the prebuilt addon only takes milliseconds). Idempotent: an applied patch is
 * left alone, and the addon is rebuilt only when the stamp of the last good build is missing
 * or stale. Any failure fails the install: there is no fallback to millisecond times.
 *
 * Plain JavaScript because it runs before `npm run build`. Uses the node-gyp that npm bundles
 * (npm_config_node_gyp during npm scripts) and libfuse from fuse-shared-library, as
 * fuse-native's own binding.gyp says.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import console from 'node:console';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const FOR_VERSION = '2.2.6';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PATCH = join(ROOT, 'third_party/fuse-native/nanosecond-times.patch');
const STAMP = 'build/nanosecond-times.stamp';

class PatchError extends Error {}

function run(cmd, args, opts) {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (res.error) throw new PatchError(`${cmd}: ${res.error.message}`);
  return res;
}

function fuseNativeDir() {
  const require = createRequire(join(ROOT, 'package.json'));
  try {
    return dirname(require.resolve('fuse-native/package.json'));
  } catch {
    throw new PatchError('fuse-native is not installed');
  }
}

function checkVersion(dir) {
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (version !== FOR_VERSION) {
    throw new PatchError(`fuse-native ${version} is installed but ${relative(ROOT, PATCH)} is for ${FOR_VERSION}: port the patch, then update FOR_VERSION in scripts/patch-fuse-native.mjs`);
  }
}

/** GNU patch with no fuzz; a dry run first, since a failing real run may leave hunks applied. */
function patchArgs(...extra) {
  return ['-p1', '--fuzz=0', '--force', '--silent', '--no-backup-if-mismatch', ...extra];
}

/** True when it applied the patch now, false when it was already applied. */
function applyPatch(dir, text) {
  const tryPatch = (...extra) => run('patch', patchArgs(...extra), { cwd: dir, input: text });
  if (tryPatch('--reverse', '--dry-run').status === 0) return false;
  const check = tryPatch('--dry-run');
  if (check.status !== 0) {
    throw new PatchError(`${relative(ROOT, PATCH)} does not apply to ${dir} (changed by hand or by an older patch? npm ci installs it afresh):\n${check.stdout}${check.stderr}`);
  }
  const res = tryPatch();
  if (res.status !== 0) throw new PatchError(`patch failed in ${dir}:\n${res.stdout}${res.stderr}`);
  return true;
}

function nodeGypScript() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  // Run outside npm: the node-gyp bundled with the npm installed next to this node.
  const bundled = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  if (existsSync(bundled)) return bundled;
  throw new PatchError('node-gyp not found: run this through npm (npm ci, npm run postinstall)');
}

/** Node's own headers when nothing says where they are, so node-gyp needs no download. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include/node/common.gypi')) ? [`--nodedir=${prefix}`] : [];
}

function rebuild(dir) {
  const res = run(process.execPath, [nodeGypScript(), 'rebuild', ...nodedirArgs()], { cwd: dir });
  if (res.status !== 0) {
    const log = `${res.stdout}${res.stderr}`.split('\n').slice(-40).join('\n');
    throw new PatchError(`node-gyp rebuild of fuse-native failed (needs python3, make, g++):\n${log}`);
  }
}

/** Loads fuse-native in a fresh process: the patched index.js refuses an unpatched addon. */
function verifyLoads(dir) {
  const probe = `const p = require('node-gyp-build').path(${JSON.stringify(dir)}); require(${JSON.stringify(dir)}); console.log(p)`;
  const res = run(process.execPath, ['-e', probe], { cwd: dir });
  if (res.status !== 0) throw new PatchError(`the rebuilt fuse-native does not load:\n${res.stderr}`);
  const addon = res.stdout.trim();
  if (addon !== join(dir, 'build/Release/fuse.node')) {
    throw new PatchError(`fuse-native loads ${addon}, not the addon built from the patched source`);
  }
  return addon;
}

function main() {
  const dir = fuseNativeDir();
  checkVersion(dir);
  const text = readFileSync(PATCH, 'utf8');
  const stamp = `${createHash('sha256').update(text).digest('hex')} ${process.version}\n`;
  const applied = applyPatch(dir, text);
  const stampPath = join(dir, STAMP);
  const built = existsSync(join(dir, 'build/Release/fuse.node')) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp;
  if (!applied && built) {
    console.log(`patch-fuse-native: fuse-native ${FOR_VERSION} already patched and built`);
    return;
  }
  rebuild(dir);
  const addon = verifyLoads(dir);
  writeFileSync(stampPath, stamp);
  console.log(`patch-fuse-native: fuse-native ${FOR_VERSION} patched for nanosecond times, addon ${relative(ROOT, addon)}`);
}

try {
  main();
} catch (err) {
  const msg = err instanceof PatchError ? err.message : (err && err.stack) || String(err);
  console.error(`patch-fuse-native: ${msg}\nfuse-native would serve millisecond times; the install stops here.`);
  process.exit(1);
}
