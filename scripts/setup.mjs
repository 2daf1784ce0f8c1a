#!/usr/bin/env node
// Brings a fresh clone to a runnable state using only Node's standard library:
//   1. installs npm dependencies when node_modules is missing or older than the lock file,
//   2. installs Debian's `tor` (and, for the tests, `chromium` and `isync`) when missing and we are root,
//   3. compiles the TypeScript into dist/.
// Usage: node scripts/setup.mjs [--for start|test|bench]   (default: start)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'start';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`setup: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function have(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function lockHash() {
  return createHash('sha256').update(readFileSync(join(root, 'package-lock.json'))).digest('hex');
}

// 1. npm dependencies: installed again only when package-lock.json's content changed since the
// last install (not its timestamp: a checkout or a rebase touches that, and `npm ci` would then
// empty a node_modules shared by several checkouts for nothing).
// A node_modules installed before the stamp existed is judged by the timestamps once.
const installed = join(root, 'node_modules', '.package-lock.json');
const stamp = join(root, 'node_modules', '.onionpost-lock-sha256');
const wantHash = lockHash();
const stale = !existsSync(installed) || (existsSync(stamp)
  ? readFileSync(stamp, 'utf8').trim() !== wantHash
  : statSync(join(root, 'package-lock.json')).mtimeMs > statSync(installed).mtimeMs);
if (stale) {
  console.error('setup: installing npm dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
writeFileSync(stamp, `${wantHash}\n`);

// 2. system packages: tor always (the node owns a tor), chromium for the browser tests
const wanted = [['tor', 'tor'], ['tor-gencert', 'tor']];
// The mail bridge's tests drive a real Debian mail user agent: mbsync (isync) syncing to a Maildir.
if (purpose === 'test') wanted.push(['chromium', 'chromium'], ['mbsync', 'isync']);
const missing = [...new Set(wanted.filter(([bin]) => !have(bin)).map(([, pkg]) => pkg))];
if (missing.length > 0) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`setup: missing ${missing.join(', ')}. Install with: sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  console.error(`setup: installing Debian packages: ${missing.join(' ')}…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

// 3. compile (type-checks too; tsc exits non-zero on any type error)
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', root]);
