/**
 * The CLI as a new user types it: real `onionpost` processes, a real dev chain process, real files.
 * Checks the one-line errors (no stack traces) and the JSON shapes the issues promise.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, cliEnv, oneLineError, runCli, runCliAsync, startChainProcess } from '../fixtures/cli.js';

const root = mkdtempSync(join(tmpdir(), 'onionpost-cli-'));
const env = cliEnv(root);
let chain: ChildProcess | undefined;
let chainUrl = '';
const run = (args: string[], extraEnv: Record<string, string> = {}) => runCli(env, args, extraEnv);

before(async () => {
  const c = await startChainProcess(env);
  chain = c.process;
  chainUrl = c.url;
});

after(() => {
  if (chain?.pid) chain.kill('SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

test('init, address, --help: clear output; key file 0600 in a 0700 dir', () => {
  const help = run(['--help']);
  assert.equal(help.code, 0);
  for (const cmd of ['init', 'address', 'start', 'send', 'inbox', 'read', 'outbox', 'status', 'ui', 'contacts', 'testnet', 'chain', 'deploy', 'register', 'update', 'lookup', 'sandbox', 'mailboxes']) {
    assert.match(help.out, new RegExp(`onionpost ${cmd}`), `--help lists ${cmd}`);
  }
  const dir = join(root, 'alice');
  const init = run(['init', '--data-dir', dir, '--kdf', 'fast', '--json']);
  assert.equal(init.code, 0, init.err);
  const made = JSON.parse(init.out) as { onion: string };
  assert.equal(statSync(join(dir, 'identity.json')).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const addr = JSON.parse(run(['address', '--data-dir', dir, '--json']).out) as { onion: string; identityKey: string; encryptionKey: string };
  assert.equal(addr.onion, made.onion);
  assert.match(addr.onion, /^[a-z2-7]{56}\.onion$/);
  assert.match(addr.identityKey, /^[0-9a-f]{64}$/);
  assert.match(addr.encryptionKey, /^[0-9a-f]{64}$/);
  assert.match(run(['address', '--data-dir', dir]).out, new RegExp(addr.onion));
  oneLineError(run(['init', '--data-dir', dir, '--kdf', 'fast']), 'KEYFILE_EXISTS');
});

test('wrong passphrase, missing data dir, no running node, bad usage: one line, non-zero exit', () => {
  oneLineError(run(['start', '--data-dir', join(root, 'alice'), '--loopback', join(root, 'lb')], { ONIONPOST_PASSPHRASE: 'wrong' }), 'WRONG_PASSPHRASE');
  oneLineError(run(['address', '--data-dir', join(root, 'nobody')]), 'KEYFILE_MISSING');
  oneLineError(run(['inbox', '--data-dir', join(root, 'alice')]), 'NODE_NOT_RUNNING');
  const usage = run(['frobnicate']);
  assert.equal(usage.code, 2);
  oneLineError(usage, 'USAGE');
});

test('registry: deploy, register, lookup as typed by a user; missing key, taken name, unfunded, unreachable', () => {
  const dev = ['--network', 'dev', '--full-host', chainUrl];
  const deploy = run(['deploy', ...dev, '--json']);
  assert.equal(deploy.code, 0, deploy.err);
  assert.match((JSON.parse(deploy.out) as { address: string }).address, /^T[1-9A-HJ-NP-Za-km-z]{33}$/);
  const bobDir = join(root, 'bob');
  assert.equal(run(['init', '--data-dir', bobDir, '--kdf', 'fast']).code, 0);
  oneLineError(run(['register', 'alice', '--data-dir', join(root, 'alice'), ...dev]), 'NO_KEY');
  const reg = run(['register', 'alice', '--data-dir', join(root, 'alice'), ...dev, '--dev-account', '1', '--json']);
  assert.equal(reg.code, 0, reg.err);
  assert.equal((JSON.parse(reg.out) as { version: number }).version, 1);
  oneLineError(run(['register', 'alice', '--data-dir', bobDir, ...dev, '--dev-account', '2']), 'NAME_TAKEN');
  oneLineError(run(['register', 'bob', '--data-dir', bobDir, ...dev], { TRON_PRIVATE_KEY: randomBytes(32).toString('hex') }), 'UNFUNDED');
  const look = run(['lookup', 'alice', ...dev, '--json']);
  assert.equal(look.code, 0, look.err);
  const rec = JSON.parse(look.out) as { onion: string; identityKey: string; encryptionKey: string; owner: string };
  const alice = JSON.parse(run(['address', '--data-dir', join(root, 'alice'), '--json']).out) as { onion: string; identityKey: string };
  assert.deepEqual([rec.onion, rec.identityKey], [alice.onion, alice.identityKey]);
  assert.match(rec.owner, /^T/);
  const byOwner = run(['lookup', rec.owner, ...dev, '--json']);
  assert.equal(byOwner.code, 0, byOwner.err);
  assert.equal((JSON.parse(byOwner.out) as { onion: string }).onion, alice.onion, 'a T-address resolves by owner');
  // Later commands on the network find the deployment by themselves (no --registry).
  assert.equal(run(['lookup', 'alice', ...dev]).code, 0);
  oneLineError(run(['lookup', 'nobody', ...dev]), 'NOT_FOUND');
  oneLineError(run(['lookup', 'alice', '--network', 'dev', '--full-host', 'http://127.0.0.1:1']), 'UNREACHABLE');
  oneLineError(run(['lookup', 'alice', '--network', 'nile']), 'NO_DEPLOYMENT');

  // A dev deployment records where its chain listens: no --full-host needed.
  const plain = run(['lookup', 'alice', '--network', 'dev', '--json']);
  assert.equal(plain.code, 0, plain.err);
  // A running sandbox's marker (sandbox.json beside the deployments file) wins for --network dev...
  const deployments = JSON.parse(readFileSync(join(root, 'deployments.json'), 'utf8')) as { dev: { address: string } };
  const marker = join(root, 'sandbox.json');
  writeFileSync(marker, JSON.stringify({ pid: chain!.pid, dir: root, dev: { ...deployments.dev, fullHost: 'http://127.0.0.1:1' } }));
  oneLineError(run(['lookup', 'alice', '--network', 'dev']), 'UNREACHABLE');
  // ...but only while its process lives.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid;
  writeFileSync(marker, JSON.stringify({ pid: gone, dir: root, dev: { ...deployments.dev, fullHost: 'http://127.0.0.1:1' } }));
  assert.equal(run(['lookup', 'alice', '--network', 'dev']).code, 0);
  rmSync(marker);
});

test('start before init says to run init, before asking for a passphrase', () => {
  const dir = join(root, 'not-yet');
  const r = run(['start', '--data-dir', dir], { ONIONPOST_PASSPHRASE: '' });
  oneLineError(r, 'KEYFILE_MISSING');
  assert.match(r.err, new RegExp(`onionpost init --data-dir ${dir}`));
  const noPass = spawnSync(process.execPath, [bin, 'start', '--data-dir', dir], { env: { ...env, ONIONPOST_PASSPHRASE: undefined }, encoding: 'utf8', timeout: 30_000 });
  oneLineError({ code: noPass.status, err: noPass.stderr }, 'KEYFILE_MISSING');
});

test('start: the sign-in link on stdout as soon as the API is up, the log apart, the token nowhere; ui and status answer', async () => {
  const dir = join(root, 'alice');
  const logFile = join(root, 'alice-node.log');
  // Any free ports for the mail bridge: the default ones may be taken by another node on this machine.
  const child = spawn(process.execPath, [bin, 'start', '--data-dir', dir, '--loopback', join(root, 'lb'), '--log-file', logFile, '--log-level', 'debug', '--smtp-port', '0', '--imap-port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  try {
    for (let i = 0; i < 600 && !/onionpost node running/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /onionpost node running/, `started: ${out} ${err}`);
    const link = /web UI: +(http:\/\/127\.0\.0\.1:\d+\/login\?code=[A-Za-z0-9_-]{22})\n/.exec(out);
    assert.ok(link, `a sign-in link on stdout: ${out}`);
    assert.ok(out.indexOf('web UI:') < out.indexOf('onionpost node running'), 'the link comes before the network is up');
    const ui = await runAsync(['ui', '--data-dir', dir, '--json']);
    assert.equal(ui.code, 0, ui.err);
    assert.match((JSON.parse(ui.out) as { url: string }).url, /\/login\?code=[A-Za-z0-9_-]{22}$/);
    const status = await runAsync(['status', '--data-dir', dir, '--json']);
    assert.equal(status.code, 0, status.err);
    const st = JSON.parse(status.out) as { tor: { mode: string }; rotateKeys: { command: string } };
    assert.equal(st.tor.mode, 'loopback');
    assert.match(st.rotateKeys.command, new RegExp(`onionpost --data-dir ${dir} keys rotate --local-only$`), 'the command the web UI shows (no registry: --local-only)');
    oneLineError(await runAsync(['keys', 'rotate', '--data-dir', dir, '--local-only']), 'NODE_RUNNING');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
  const log = readFileSync(logFile, 'utf8');
  assert.equal(statSync(logFile).mode & 0o777, 0o600);
  assert.ok(log.split('\n').filter(Boolean).every((l) => JSON.parse(l) && true), 'the log file is JSON lines');
  assert.ok(log.length > 0);
  for (const [what, text] of [['stdout', out], ['stderr', err], ['log', log]] as const) assert.ok(!text.includes(token), `the API token is not in ${what}`);
  assert.ok(!out.split('\n').some((l) => l.startsWith('{')), 'no JSON log line on stdout');
});

/** Like run(), without blocking this process (the node under test may be our child, but the runner's timers must run). */
const runAsync = (args: string[]) => runCliAsync(env, args);
