#!/usr/bin/env node
/**
 * postinstall: applies the patches in third_party/fuse-native to the installed fuse-native, in
 * order, and rebuilds its addon from source: stat times reach the kernel with nanoseconds (the
 * prebuilt addon only takes milliseconds), reads reuse one buffer per FUSE thread, and getattr
 * can be answered in C from a stat table (see the README there). Idempotent: applied patches
 * are left alone, and the addon is rebuilt only when the stamp of the last good build is
 * missing or stale. Any failure fails the install: there
 * is no fallback to an unpatched addon.
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
/** Applied in this order; each one's context includes the ones before it. */
const PATCHES = ['nanosecond-times.patch', 'reused-read-buffer.patch', 'stat-table.patch', 'dir-table.patch', 'span-reads.patch', 'no-open.patch'].map((f) => join(ROOT, 'third_party/fuse-native', f));
const STAMP = 'build/soci-patches.stamp';

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
    throw new PatchError(`fuse-native ${version} is installed but the patches in third_party/fuse-native are for ${FOR_VERSION}: port them, then update FOR_VERSION in scripts/patch-fuse-native.mjs`);
  }
}

/** GNU patch with no fuzz; a dry run first, since a failing real run may leave hunks applied. */
function patchArgs(...extra) {
  return ['-p1', '--fuzz=0', '--force', '--silent', '--no-backup-if-mismatch', ...extra];
}

function tryPatch(dir, text, ...extra) {
  return run('patch', patchArgs(...extra), { cwd: dir, input: text });
}

/**
 * Applies the patches not yet applied; true when it applied any. The last patch that reverses
 * cleanly marks how far an earlier install got (a patch may not reverse once later ones
 * changed its context, so the check runs from the last one back).
 */
function applyPatches(dir, texts) {
  let done = texts.length;
  while (done > 0 && tryPatch(dir, texts[done - 1], '--reverse', '--dry-run').status !== 0) done--;
  for (let i = done; i < texts.length; i++) {
    const name = relative(ROOT, PATCHES[i]);
    const check = tryPatch(dir, texts[i], '--dry-run');
    if (check.status !== 0) {
      throw new PatchError(`${name} does not apply to ${dir} (changed by hand or by an older patch? npm ci installs it afresh):\n${check.stdout}${check.stderr}`);
    }
    const res = tryPatch(dir, texts[i]);
    if (res.status !== 0) throw new PatchError(`${name} failed in ${dir}:\n${res.stdout}${res.stderr}`);
  }
  return done < texts.length;
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
  const texts = PATCHES.map((p) => readFileSync(p, 'utf8'));
  const hash = createHash('sha256');
  for (const t of texts) hash.update(t);
  const stamp = `${hash.digest('hex')} ${process.version}\n`;
  const applied = applyPatches(dir, texts);
  const stampPath = join(dir, STAMP);
  const built = existsSync(join(dir, 'build/Release/fuse.node')) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp;
  if (!applied && built) {
    console.log(`patch-fuse-native: fuse-native ${FOR_VERSION} already patched and built`);
    return;
  }
  rebuild(dir);
  const addon = verifyLoads(dir);
  writeFileSync(stampPath, stamp);
  console.log(`patch-fuse-native: fuse-native ${FOR_VERSION} patched (nanosecond times, reused read buffers, stat table, dir table, span reads, no open), addon ${relative(ROOT, addon)}`);
}

try {
  main();
} catch (err) {
  const msg = err instanceof PatchError ? err.message : (err && err.stack) || String(err);
  console.error(`patch-fuse-native: ${msg}\nan unpatched fuse-native cannot be used; the install stops here.`);
  process.exit(1);
}
