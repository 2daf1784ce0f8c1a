/**
 * The bridge as a user starts it: `onionpost start --loopback … --smtp-port 0 --imap-port 0` in its
 * own process, `onionpost bridge --json` against it, and a mail client logging in with what it printed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';

const bin = join(dirname(fileURLToPath(import.meta.url)), '../../../bin/onionpost.js');
const root = mkdtempSync(join(tmpdir(), 'onionpost-bridge-cli-'));
const env = { ...process.env, ONIONPOST_PASSPHRASE: 'correct horse', ONIONPOST_HOME: join(root, 'home') };
let node: ChildProcess | undefined;

after(async () => {
  if (node && node.exitCode === null) {
    const exited = new Promise((r) => node!.once('exit', r));
    node.kill('SIGTERM');
    await exited;
  }
  rmSync(root, { recursive: true, force: true });
});

const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8', timeout: 60_000 });

test('start runs the bridge on free ports; `bridge --json` prints what a script needs; a client logs in with it', async () => {
  const dir = join(root, 'alice');
  assert.equal(cli(['init', '--data-dir', dir, '--kdf', 'fast']).status, 0);
  node = spawn(process.execPath, [bin, 'start', '--data-dir', dir, '--loopback', join(root, 'lb'), '--smtp-port', '0', '--imap-port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  node.stdout!.on('data', (d) => (output += d));
  node.stderr!.on('data', (d) => (output += d));
  const mailLine = /mail: +SMTP 127\.0\.0\.1:\d+, IMAP 127\.0\.0\.1:\d+, user mail@[a-z2-7]{56}\.onion/;
  const end = Date.now() + 30_000;
  while (!mailLine.test(output) && Date.now() < end && node.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  assert.match(output, mailLine, 'start prints where the mail bridge listens');
  assert.ok(existsSync(join(dir, 'api.json')));

  const r = cli(['bridge', '--json', '--data-dir', dir]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { smtp: { host: string; port: number }; imap: { host: string; port: number }; user: string; password: string; address: string };
  assert.deepEqual(Object.keys(s).sort(), ['address', 'imap', 'password', 'smtp', 'user']);
  assert.equal(s.smtp.host, '127.0.0.1');
  assert.equal(s.imap.host, '127.0.0.1');
  assert.ok(s.smtp.port > 0 && s.imap.port > 0);
  assert.match(s.address, /^mail@[a-z2-7]{56}\.onion$/);
  assert.equal(s.user, s.address);
  assert.equal(statSync(join(dir, 'bridge-password')).mode & 0o777, 0o600);
  const human = cli(['bridge', '--data-dir', dir]);
  assert.match(human.stdout, new RegExp(`Incoming mail: +IMAP, server 127\\.0\\.0\\.1, port ${s.imap.port}`));

  const imap = new ImapFlow({ host: s.imap.host, port: s.imap.port, secure: false, doSTARTTLS: false, auth: { user: s.user, pass: s.password }, logger: false });
  imap.on('error', () => {});
  await imap.connect();
  const list = await imap.list();
  assert.deepEqual(list.map((f) => [f.path, f.specialUse ?? null]).sort(), [['INBOX', '\\Inbox'], ['Sent', '\\Sent'], ['Trash', '\\Trash']]);
  await imap.logout();
  const smtp = nodemailer.createTransport({ host: s.smtp.host, port: s.smtp.port, secure: false, ignoreTLS: true, auth: { user: s.user, pass: s.password } });
  assert.equal(await smtp.verify(), true);
  // The API token is not the bridge password.
  const apiToken = spawnSync('cat', [join(dir, 'api-token')], { encoding: 'utf8' }).stdout.trim();
  assert.notEqual(apiToken, s.password);
});
