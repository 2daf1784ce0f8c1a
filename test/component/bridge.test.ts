import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { ImapFlow } from 'imapflow';
import { generateIdentity } from '../../src/crypto/index.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { BRIDGE_PASSWORD, bridgedNode, imapClient, settings, smtpTransport } from '../fixtures/bridge.js';

let t: TestNodes;
let alice: OnionpostNode;
let bob: OnionpostNode;
const clients: ImapFlow[] = [];

before(async () => {
  t = await testNodes('onionpost-bridge-');
  alice = await bridgedNode(t, 'alice');
  bob = await bridgedNode(t, 'bob');
  await eventually(() => alice.reachable && bob.reachable, 10_000, 'self-checks');
});
after(async () => {
  await Promise.all(clients.map((c) => c.logout().catch(() => c.close())));
  await t.cleanup();
});

async function imap(n: OnionpostNode): Promise<ImapFlow> {
  const c = await imapClient(n);
  clients.push(c);
  return c;
}

const bobAddr = () => settings(bob).user;
const aliceAddr = () => settings(alice).user;
const inbox = (n: OnionpostNode) => n.store.listMessages({ direction: 'in', limit: 1000 });

test('nodemailer sends through SMTP; the other node receives subject, body and attachment; imapflow reads it back', async () => {
  assert.equal(settings(alice).smtp.host, '127.0.0.1');
  const file = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
  const info = await smtpTransport(alice).sendMail({
    from: aliceAddr(), to: bobAddr(), subject: 'Grüße über Tor', text: 'Hello Bob,\nthis came from a mail client.\n',
    attachments: [{ filename: 'data.bin', content: file, contentType: 'application/octet-stream' }],
  });
  assert.match(info.response, /^250 .*queued as [0-9a-f]{32}/);
  const id = /queued as ([0-9a-f]{32})/.exec(info.response)![1]!;
  await eventually(() => inbox(bob).some((m) => m.id === id), 10_000, 'bob received');
  const got = bob.store.getMessage(id)!;
  assert.deepEqual([got.subject, got.body, got.attachmentCount], ['Grüße über Tor', 'Hello Bob,\nthis came from a mail client.\n', 1]);
  const files = bob.store.getAttachments(id);
  assert.deepEqual([files[0]!.name, files[0]!.mediaType, Buffer.from(files[0]!.data).equals(file)], ['data.bin', 'application/octet-stream', true]);

  const c = await imap(bob);
  const lock = await c.getMailboxLock('INBOX');
  try {
    const msg = await c.fetchOne('*', { envelope: true, bodyStructure: true, source: true, flags: true, uid: true, headers: ['x-onionpost-id'] });
    assert.ok(msg);
    if (!msg) return;
    assert.equal(msg.envelope!.subject, 'Grüße über Tor');
    assert.equal(msg.envelope!.from![0]!.address, aliceAddr());
    assert.equal(msg.envelope!.messageId, `<${id}@onionpost.onion>`);
    assert.ok(!msg.flags!.has('\\Seen'));
    const bs = msg.bodyStructure!;
    assert.equal(bs.type, 'multipart/mixed');
    assert.deepEqual(bs.childNodes!.map((p) => [p.part, p.type, p.disposition ?? null]), [['1', 'text/plain', null], ['2', 'application/octet-stream', 'attachment']]);
    assert.match(msg.source!.toString(), /this came from a mail client/);
    const text = await c.download(String(msg.seq), '1');
    assert.equal(await streamText(text.content!), 'Hello Bob,\r\nthis came from a mail client.\r\n');
    const part = await c.download(String(msg.seq), '2');
    assert.ok((await streamBytes(part.content!)).equals(file), 'the attachment comes back byte for byte');
    assert.equal(part.meta!.filename, 'data.bin');
    // A section fetch without PEEK sets \Seen; imapflow's download uses PEEK, so the message is still unseen.
    assert.equal(bob.store.getMessage(id)!.read, false);
  } finally {
    lock.release();
  }
});

async function streamBytes(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}
async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  return (await streamBytes(s)).toString('utf8');
}

test('\\Seen round-trips with the node\'s read state, both ways', async () => {
  const sent = await alice.send({ to: bob.identity.onion, subject: 'seen?', body: 'x', wait: true });
  assert.equal(sent.state, 'delivered');
  const c = await imap(bob);
  const lock = await c.getMailboxLock('INBOX');
  try {
    const uids = (await c.search({ header: { 'x-onionpost-id': sent.id } }, { uid: true })) as number[];
    assert.equal(uids.length, 1);
    await c.messageFlagsAdd(uids, ['\\Seen'], { uid: true });
    assert.equal(bob.store.getMessage(sent.id)!.read, true, 'IMAP \\Seen marks it read in the node');
    await c.messageFlagsRemove(uids, ['\\Seen'], { uid: true });
    assert.equal(bob.store.getMessage(sent.id)!.read, false);
    // Read in the web UI / CLI (messages.get) shows as \Seen in the client.
    await bob.handlers['messages.get']!({ id: sent.id });
    await c.noop();
    const m = await c.fetchOne(String(uids[0]), { flags: true }, { uid: true });
    assert.ok(m && m.flags!.has('\\Seen'));
    assert.deepEqual(await c.search({ seen: false }, { uid: true }), ((await c.search({ all: true }, { uid: true })) as number[]).filter((u) => {
      const e = bob.store.mailFolders.entries('INBOX').find((x) => x.uid === u);
      return e && !e.flags.includes('\\Seen');
    }));
  } finally {
    lock.release();
  }
});

test('IDLE wakes on new mail', async () => {
  const c = await imap(bob);
  const lock = await c.getMailboxLock('INBOX');
  try {
    const before = c.mailbox && typeof c.mailbox === 'object' ? c.mailbox.exists : 0;
    const woke = new Promise<number>((resolve) => c.once('exists', (d: { count: number }) => resolve(d.count)));
    const idling = c.idle();
    await alice.send({ to: bob.identity.onion, subject: 'wake up', body: 'idle test' });
    const count = await woke;
    assert.equal(count, before + 1);
    await c.noop();
    await idling.catch(() => {});
  } finally {
    lock.release();
  }
});

test('a reply from the mail client threads: In-Reply-To/References become threadId/inReplyTo and come back', async () => {
  const first = await alice.send({ to: bob.identity.onion, subject: 'thread me', body: 'root', wait: true });
  const reply = await smtpTransport(bob).sendMail({
    from: bobAddr(), to: aliceAddr(), subject: 'Re: thread me', text: 'a reply',
    inReplyTo: `<${first.id}@onionpost.onion>`, references: [`<${first.id}@onionpost.onion>`],
  });
  const id = /queued as ([0-9a-f]{32})/.exec(reply.response)![1]!;
  await eventually(() => !!alice.store.getMessage(id), 10_000, 'reply arrived');
  const got = alice.store.getMessage(id)!;
  assert.deepEqual([got.threadId, got.inReplyTo], [first.id, first.id]);
  const c = await imap(alice);
  const lock = await c.getMailboxLock('INBOX');
  try {
    const uids = (await c.search({ header: { 'x-onionpost-id': id } }, { uid: true })) as number[];
    const m = await c.fetchOne(String(uids[0]), { envelope: true, headers: ['references'] }, { uid: true });
    assert.ok(m);
    if (!m) return;
    assert.equal(m.envelope!.inReplyTo, `<${first.id}@onionpost.onion>`);
    assert.match(m.headers!.toString(), new RegExp(`References: <${first.id}@onionpost.onion>`));
  } finally {
    lock.release();
  }
});

test('Sent shows each message with X-Onionpost-State, replaced by a new UID when it is delivered', async () => {
  const s = await alice.send({ to: bob.identity.onion, subject: 'state me', body: 'x', wait: true });
  assert.equal(s.state, 'delivered');
  const c = await imap(alice);
  const lock = await c.getMailboxLock('Sent');
  try {
    const uids = (await c.search({ header: { 'x-onionpost-id': s.id } }, { uid: true })) as number[];
    assert.equal(uids.length, 1, 'one copy: the queued copy was replaced');
    const m = await c.fetchOne(String(uids[0]), { headers: ['x-onionpost-state'], flags: true, envelope: true }, { uid: true });
    assert.ok(m);
    if (!m) return;
    assert.match(m.headers!.toString(), /X-Onionpost-State: delivered/);
    assert.equal(m.envelope!.from![0]!.address, aliceAddr());
    assert.equal(m.envelope!.to![0]!.address, bobAddr());
  } finally {
    lock.release();
  }
});

test('COPY to Trash, EXPUNGE from INBOX, and the UIDs and UIDVALIDITY stay the same across a restart', async () => {
  const s = await alice.send({ to: bob.identity.onion, subject: 'trash me', body: 'x', wait: true });
  const c = await imap(bob);
  let lock = await c.getMailboxLock('INBOX');
  let validity: bigint;
  let uids: number[];
  try {
    validity = (c.mailbox as { uidValidity: bigint }).uidValidity;
    uids = (await c.search({ header: { 'x-onionpost-id': s.id } }, { uid: true })) as number[];
    const moved = await c.messageMove(uids, 'Trash', { uid: true });
    assert.ok(moved && moved.uidMap && moved.uidMap.size === 1, 'MOVE answers with COPYUID');
    assert.deepEqual(await c.search({ header: { 'x-onionpost-id': s.id } }, { uid: true }), []);
  } finally {
    lock.release();
  }
  lock = await c.getMailboxLock('Trash');
  let trashUid: number;
  try {
    const inTrash = (await c.search({ header: { 'x-onionpost-id': s.id } }, { uid: true })) as number[];
    assert.equal(inTrash.length, 1);
    trashUid = inTrash[0]!;
  } finally {
    lock.release();
  }
  const allInbox = bob.store.mailFolders.entries('INBOX').map((e) => [e.uid, e.ref]);
  // Restart bob: same database, same identity.
  await c.logout();
  clients.splice(clients.indexOf(c), 1);
  await bob.close();
  bob = await bridgedNode(t, 'bob', { identity: bob.identity });
  assert.deepEqual(bob.store.mailFolders.entries('INBOX').map((e) => [e.uid, e.ref]), allInbox, 'same UIDs after the restart');
  const c2 = await imap(bob);
  lock = await c2.getMailboxLock('Trash');
  try {
    const st = await c2.status('INBOX', { uidValidity: true });
    assert.equal(st && st.uidValidity, validity!, 'UIDVALIDITY unchanged');
    assert.deepEqual(await c2.search({ header: { 'x-onionpost-id': s.id } }, { uid: true }), [trashUid]);
    await c2.messageDelete([trashUid], { uid: true });
    assert.deepEqual(await c2.search({ all: true }, { uid: true }), []);
  } finally {
    lock.release();
  }
  assert.ok(bob.store.getMessage(s.id), 'the message stays in the node; only the folder entry went');
});

test('a delivery that expires comes back as an RFC 3464 bounce in INBOX', async () => {
  const nobody = generateIdentity();
  const s = await alice.send({ to: nobody.onion, subject: 'to nowhere', body: 'x', ttlMs: 1_500 });
  await eventually(() => alice.store.getMessage(s.id)?.state === 'expired', 15_000, 'expired');
  const c = await imap(alice);
  const lock = await c.getMailboxLock('INBOX');
  try {
    await c.noop();
    const uids = (await c.search({ header: { 'x-onionpost-id': s.id } }, { uid: true })) as number[];
    assert.equal(uids.length, 1, 'one bounce');
    const m = await c.fetchOne(String(uids[0]), { bodyStructure: true, envelope: true, source: true }, { uid: true });
    assert.ok(m);
    if (!m) return;
    assert.equal(m.bodyStructure!.type, 'multipart/report');
    assert.equal(m.bodyStructure!.parameters!['report-type'], 'delivery-status');
    assert.deepEqual(m.bodyStructure!.childNodes!.map((p) => p.type), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.match(m.envelope!.subject!, /Undelivered mail \(expired\): to nowhere/);
    const src = m.source!.toString();
    assert.match(src, /Action: failed\r\nStatus: 5\.4\.7/);
    assert.match(src, new RegExp(`Final-Recipient: rfc822; mail@${nobody.onion}`));
  } finally {
    lock.release();
  }
});

test('the servers listen on 127.0.0.1 only: another loopback address is refused', async () => {
  for (const p of [settings(alice).smtp.port, settings(alice).imap.port]) {
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const s = connect({ host: '127.0.0.2', port: p });
      s.once('connect', () => (s.destroy(), resolve(null)));
      s.once('error', resolve);
    });
    assert.equal(err?.code, 'ECONNREFUSED');
  }
  const viaApi = (await alice.handlers['bridge.settings']!({})) as { smtp: { host: string; port: number }; imap: { host: string; port: number }; user: string; password: string; address: string };
  assert.deepEqual(viaApi, { smtp: settings(alice).smtp, imap: settings(alice).imap, user: aliceAddr(), password: BRIDGE_PASSWORD, address: aliceAddr() });
});
