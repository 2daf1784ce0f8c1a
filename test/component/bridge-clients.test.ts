/**
 * The bridge with client software that is not ours: Python's standard smtplib and imaplib, and
 * mbsync (isync, from Debian; `npm test` installs it through scripts/setup.mjs) syncing to a
 * Maildir, each run as its own process.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { simpleParser } from 'mailparser';
import type { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { BRIDGE_PASSWORD, bridgedNode, settings } from '../fixtures/bridge.js';

const run = promisify(execFile);
const PY = fileURLToPath(new URL('../../../test/fixtures/bridge_client.py', import.meta.url));

let t: TestNodes;
let alice: OnionpostNode;
let bob: OnionpostNode;

before(async () => {
  t = await testNodes('onionpost-bridge-clients-');
  alice = await bridgedNode(t, 'alice');
  bob = await bridgedNode(t, 'bob');
  await eventually(() => alice.reachable && bob.reachable, 10_000, 'self-checks');
});
after(() => t.cleanup());

const json = (n: OnionpostNode) => JSON.stringify(settings(n));

test('Python smtplib sends, the other node receives, Python imaplib reads it with its attachment and sets \\Seen', async () => {
  const sent = await run('python3', [PY, 'send', json(alice), settings(bob).user, 'from python', 'Hi from smtplib', 'table.bin'], { timeout: 60_000 });
  assert.deepEqual(JSON.parse(sent.stdout), { refused: [] });
  let id = '';
  await eventually(() => {
    id = bob.store.listMessages({ direction: 'in', limit: 100 }).find((m) => m.subject === 'from python')?.id ?? '';
    return id !== '';
  }, 10_000, 'bob received the python mail');
  const got = bob.store.getMessage(id)!;
  assert.equal(got.body.trim(), 'Hi from smtplib');
  assert.deepEqual(bob.store.getAttachments(id).map((a) => [a.name, a.data.length]), [['table.bin', 1024]]);

  const read = JSON.parse((await run('python3', [PY, 'read', json(bob), id], { timeout: 60_000 })).stdout) as Record<string, unknown>;
  assert.equal(read.subject, 'from python');
  assert.equal(read.from, settings(alice).user);
  assert.equal((read.text as string).trim(), 'Hi from smtplib');
  assert.deepEqual(read.files, [['table.bin', 1024]]);
  assert.equal(read.bodystructure_has_attachment, true);
  assert.equal(read.seen_before, false);
  assert.equal(bob.store.getMessage(id)!.read, true, 'imaplib STORE +FLAGS (\\Seen) marked it read in the node');
});

test('mbsync (isync) syncs INBOX and Sent to a Maildir, reads the mail, and pushes \\Seen back to the node', async () => {
  const s = await alice.send({ to: bob.identity.onion, subject: 'for mbsync', body: 'synced by isync', wait: true, attachments: [{ name: 'note.txt', mediaType: 'text/plain', data: Buffer.from('attached text') }] });
  assert.equal(s.state, 'delivered');
  const dir = join(t.root, 'mbsync');
  const maildir = join(dir, 'mail');
  mkdirSync(maildir, { recursive: true });
  const b = settings(bob);
  const conf = join(dir, 'mbsyncrc');
  writeFileSync(conf, [
    'IMAPAccount onionpost', `Host ${b.imap.host}`, `Port ${b.imap.port}`, `User ${b.user}`, `Pass "${BRIDGE_PASSWORD}"`, 'SSLType None', 'AuthMechs LOGIN', '',
    'IMAPStore remote', 'Account onionpost', '',
    'MaildirStore local', `Path ${maildir}/`, `Inbox ${maildir}/INBOX`, 'SubFolders Verbatim', '',
    'Channel onionpost', 'Far :remote:', 'Near :local:', 'Patterns INBOX Sent', 'Create Near', 'Sync All', 'Expunge None', 'SyncState *', '',
  ].join('\n'), { mode: 0o600 });
  const mbsync = () => run('mbsync', ['-c', conf, '-a'], { timeout: 60_000 }).catch((err: { code?: string; stderr?: string }) => {
    if (err.code === 'ENOENT') throw new Error('mbsync is not installed: run `npm run setup` (it installs Debian\'s isync) or apt-get install isync');
    throw new Error(`mbsync failed: ${err.stderr}`);
  });
  await mbsync();
  const files = (folder: string) => ['new', 'cur'].flatMap((d) => readdirSync(join(maildir, folder, d)).map((f) => join(maildir, folder, d, f)));
  const inboxFiles = files('INBOX');
  const parsed = await Promise.all(inboxFiles.map(async (f) => ({ f, m: await simpleParser(readFileSync(f)) })));
  const mine = parsed.find((p) => p.m.headers.get('x-onionpost-id') === s.id);
  assert.ok(mine, `the message is in the Maildir (${inboxFiles.length} files)`);
  assert.equal(mine.m.subject, 'for mbsync');
  assert.equal(mine.m.text?.trim(), 'synced by isync');
  assert.deepEqual(mine.m.attachments.map((a) => [a.filename, a.content.toString()]), [['note.txt', 'attached text']]);
  assert.equal(mine.m.from?.value[0]?.address, settings(alice).user);
  assert.ok(existsSync(join(maildir, 'Sent', 'cur')), 'the Sent folder was synced too');
  assert.equal(bob.store.getMessage(s.id)!.read, false);

  // Mark it seen in the Maildir (the way a Maildir MUA does: the S info flag) and sync again.
  const seenName = mine.f.replace(/\/new\//, '/cur/').replace(/(:2,[A-Z]*)?$/, (m) => `:2,${[...new Set(`${(m || ':2,').slice(3)}S`)].sort().join('')}`);
  renameSync(mine.f, seenName);
  await mbsync();
  assert.equal(bob.store.getMessage(s.id)!.read, true, 'mbsync pushed \\Seen to the node');
});
