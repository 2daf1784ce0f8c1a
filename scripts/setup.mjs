#!/usr/bin/env node
// Brings a fresh clone to a runnable state using only Node's standard library:
//   1. installs npm dependencies when node_modules is missing or older than the lock file,
//   2. installs Debian's `tor` (and, for the tests, `chromium` and `isync`) when missing and we are root,
//   3. compiles the TypeScript into dist/.
// Usage: node scripts/setup.mjs [--for start|test|bench]   (default: start)
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
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

function mtime(p) {
  try { return statSync(p).mtimeMs; } catch { return 0; }
}

// 1. npm dependencies
const stamp = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(stamp) || mtime(join(root, 'package-lock.json')) > mtime(stamp)) {
  console.error('setup: installing npm dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

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
