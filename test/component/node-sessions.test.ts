/**
 * Sessions through whole nodes: two (or more) OnionpostNodes over real ws on 127.0.0.1, each on its
 * own SQLite file, with the wire between them recorded. What the unit tier shows for src/session
 * alone, shown here for the node: protocol version 2 on the wire, forward secrecy against the
 * receiver's whole data dir, no signature over content on the wire, an exhausted one-time prekey
 * pool, out-of-order and replayed DELIVERs, and mail queued for protocol 1 before an upgrade.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { fromHex, toHex } from '../../src/bytes.js';
import { generateIdentity, verifyDomain, type Identity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import { loopbackNetwork, type OnionpostNode } from '../../src/node/index.js';
import { WebSocket } from 'ws';
import { PeerConnection, RejectCode, decodeFrame, encodeFrame, type Frame } from '../../src/protocol/index.js';
import {
  SessionError, decodeBundleAnswer, decodeState, decrypt, encodeMessage, respond,
} from '../../src/session/index.js';
import { storePrekeyLookup } from '../../src/pipeline/index.js';
import { MIGRATIONS, migrate, openStore } from '../../src/store/index.js';
import { dialWs } from '../../src/transport/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { delivered, tappedNetwork, type Tapped } from '../fixtures/wire-tap.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-node-sessions-');
});
after(() => t.cleanup());

let n = 0;
const loop = () => loopbackNetwork(join(t.root, 'loopback'));
const fast = { outbox: { policy: { fastBaseMs: 200, busyMs: 50 } } };

/** A node whose client connections are recorded in `frames`. */
async function tapped(name: string, frames: Tapped[], opts: Parameters<TestNodes['make']>[1] = {}): Promise<OnionpostNode> {
  return t.make(`${name}-${++n}`, { network: tappedNetwork(loop(), frames), ...fast, ...opts });
}

async function send(from: OnionpostNode, to: OnionpostNode, body: string) {
  const r = await from.send({ to: to.identity.onion, subject: 's', body, wait: true, waitMs: 20_000 });
  assert.equal(r.state, 'delivered', `${body}: ${r.state} ${r.reason ?? ''}`);
  return r.id;
}

async function rawClient(node: OnionpostNode): Promise<PeerConnection> {
  const channel = await dialWs({ url: `ws://127.0.0.1:${node.status().listener!.port}/`, limits: DEFAULT_LIMITS });
  return new PeerConnection({ channel, role: 'client' });
}

/** Copies a closed node's database files (what a backup, or a thief, takes). */
function copyDb(from: string, to: string): void {
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
}

test('a protocol-1 peer gets REJECT UNSUPPORTED_VERSION naming both versions, and the connection ends', async () => {
  const bob = await t.make(`bob-${++n}`, fast);
  // A round-1 node: it says HELLO with version 1 and reads what comes back.
  const answer = await new Promise<{ frames: Frame[]; code: number }>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${bob.status().listener!.port}/`, { perMessageDeflate: false });
    const frames: Frame[] = [];
    ws.on('open', () => ws.send(encodeFrame({ type: 'HELLO', versions: [1], capabilities: [] })));
    ws.on('message', (d: Buffer) => frames.push(decodeFrame(new Uint8Array(d), DEFAULT_LIMITS)));
    ws.on('close', (code) => resolve({ frames, code }));
    ws.on('error', reject);
  });
  assert.deepEqual(answer.frames.map((f) => f.type), ['HELLO', 'REJECT']);
  const hello = answer.frames[0]!;
  assert.ok(hello.type === 'HELLO' && hello.versions.join() === '2');
  const r = answer.frames[1]!;
  assert.ok(r.type === 'REJECT');
  assert.deepEqual([r.code, r.retryable, r.reason], [RejectCode.UNSUPPORTED_VERSION, false, 'no common protocol version: you speak 1, this node speaks 2']);
  assert.equal(answer.code, 1002, 'then the connection is closed');
  const ok = await rawClient(bob);
  assert.equal((await ok.ready).version, 2);
  await ok.close();
});

test('forward secrecy: envelopes captured on the wire do not open with the receiver\'s whole data dir once the conversation moved on', async () => {
  const frames: Tapped[] = [];
  const alice = await tapped('alice', frames);
  const bobDb = join(t.root, `fs-bob-${++n}.db`);
  const bobId = generateIdentity();
  const bob = await t.make(`bob-${n}`, { identity: bobId, dbPath: bobDb, ...fast });
  const secrets = ['first contact, with a one-time prekey', 'secret one', 'secret two', 'secret three'];
  for (const s of secrets) await send(alice, bob, s);
  const captured = delivered(frames);
  assert.equal(captured.length, 4);
  assert.equal(captured[0]!.envelope[0], 0x21, 'an INIT first');
  assert.ok(captured.slice(1).every((c) => c.envelope[0] === 0x22), 'then SESSION envelopes');
  // The conversation moves on: two round trips (each a DH ratchet step on both sides).
  for (let i = 0; i < 2; i++) {
    await send(bob, alice, `reply ${i}`);
    await send(alice, bob, `later ${i}`);
  }
  await bob.close();
  // The thief takes everything: the database (sessions, prekeys, skipped keys) and the identity.
  const stolenDb = join(t.root, `fs-stolen-${n}.db`);
  copyDb(bobDb, stolenDb);
  const stolen = openStore({ path: stolenDb, logger: silentLogger() });
  try {
    const ss = stolen.sessions;
    const sessions = ss.listSessions();
    assert.ok(sessions.length >= 1);
    const now = Date.now();
    const opts = { now, maxClockSkewMs: DEFAULT_LIMITS.maxClockSkewMs, maxTtlMs: DEFAULT_LIMITS.maxTtlMs };
    for (const c of captured.slice(1)) {
      for (const s of sessions) {
        const state = decodeState(s.state);
        for (let k = 0; k <= state.recvHighest + DEFAULT_LIMITS.tagWindow; k++) {
          assert.throws(() => decrypt(state, c.envelope, { k, skipped: ss.getSkippedKey(s.id, k), ...opts }), SessionError, `captured ${c.id} opened as k=${k}`);
        }
      }
    }
    const lookup = storePrekeyLookup(ss);
    assert.equal(captured[0]!.envelope[41], 1, 'the INIT used a one-time prekey');
    assert.throws(() => respond({ self: bobId, prekeys: lookup, envelope: captured[0]!.envelope, ...opts }), (e: unknown) => e instanceof SessionError && e.code === 'PREKEY_UNKNOWN');
    // …and what the captured envelopes said is nowhere in the stolen keys' reach but Bob's inbox itself.
    assert.deepEqual(secrets.map((s) => stolen.listMessages({ direction: 'in' }).some((m) => m.body === s)), secrets.map(() => true));
  } finally {
    stolen.close();
  }
});

test('deniability on the wire: RECEIPTs are 16-byte MACs, and no envelope carries a signature over its content', async () => {
  const aFrames: Tapped[] = [];
  const bFrames: Tapped[] = [];
  const alice = await tapped('alice', aFrames);
  const bob = await tapped('bob', bFrames);
  const ids = [await send(alice, bob, 'hello bob'), await send(alice, bob, 'second'), await send(bob, alice, 'hello alice')];
  const frames = [...aFrames, ...bFrames];
  const receipts = frames.filter((f) => f.frame.type === 'RECEIPT');
  assert.ok(receipts.length >= 3);
  for (const f of receipts) if (f.frame.type === 'RECEIPT') for (const r of f.frame.receipts) assert.equal(r.mac.length, 16);
  // The BUNDLE answer's one signature is the bundle's, over the public bundle (a statement about keys, not about any message).
  const bundles = frames.filter((f) => f.frame.type === 'BUNDLE');
  assert.ok(bundles.length >= 1);
  for (const f of bundles) {
    if (f.frame.type !== 'BUNDLE') continue;
    const b = decodeBundleAnswer(f.frame.bundle).bundle;
    assert.ok(verifyDomain(b.identityKey, 'bundle/v2', b.bytes.subarray(0, b.bytes.length - 64), b.signature));
  }
  const sent = [...delivered(aFrames).map((d) => ({ ...d, from: alice.identity, to: bob })), ...delivered(bFrames).map((d) => ({ ...d, from: bob.identity, to: alice }))];
  assert.deepEqual(new Set(sent.map((s) => s.id)), new Set(ids));
  for (const s of sent) {
    const m = s.to.store.getMessage(s.id)!;
    const inner = encodeMessage({
      kind: m.kind, id: fromHex(m.id), createdAt: m.createdAt, expiresAt: m.expiresAt, threadId: null, inReplyTo: null,
      subject: m.subject ?? '', body: m.body, attachments: [],
    });
    // A transferable proof of authorship would be the sender's signature over the message: round 1
    // signed the inner message under "message/v1". No 64-byte window verifies so, under either domain.
    const texts = [inner, fromHex(m.id)];
    for (let i = 0; i + 64 <= s.envelope.length; i++) {
      const sig = s.envelope.subarray(i, i + 64);
      for (const text of texts) {
        for (const domain of ['message/v1', 'message/v2']) assert.ok(!verifyDomain(s.from.identityKey, domain, text, sig), `a signature at ${i} of ${s.id}`);
      }
    }
  }
});

test('an exhausted one-time prekey pool: new contacts agree without one, and their sessions work both ways', async () => {
  const bob = await t.make(`bob-${++n}`, { ...fast, limits: { oneTimePrekeyPool: 2, oneTimePrekeyRefillBelow: 0 } });
  const drain = await rawClient(bob);
  await drain.ready;
  let handedOut = 0;
  for (let i = 0; i < 10; i++) {
    const a = decodeBundleAnswer(await drain.requestBundle());
    if (!a.oneTimePrekey) break;
    handedOut++;
  }
  await drain.close();
  assert.ok(handedOut <= 2, 'never more one-time prekeys than the pool held');
  assert.equal(bob.store.sessions.oneTimePrekeyCounts().available, 0, 'the pool is empty');
  for (const name of ['alice', 'carol']) {
    const frames: Tapped[] = [];
    const peer = await tapped(name, frames);
    await send(peer, bob, `from ${name}`);
    const init = delivered(frames)[0]!.envelope;
    assert.deepEqual([init[0], init[41], toHex(init.subarray(42, 46))], [0x21, 0, '00000000'], 'an INIT without a one-time prekey');
    await send(bob, peer, `back to ${name}`);
    await send(peer, bob, `and on, ${name}`);
  }
  assert.equal(bob.store.counts().inbox, 4);
});

test('out-of-order and replayed DELIVERs through the node: one row each, every replay gets the same receipt, the sender ends delivered', async () => {
  const aliceId = generateIdentity();
  const aliceDb = join(t.root, `ooo-alice-${++n}.db`);
  let alice = await t.make(`alice-${n}`, { identity: aliceId, dbPath: aliceDb, ...fast });
  const bob = await t.make(`bob-${n}`, fast);
  await send(alice, bob, 'the INIT');
  // Alice queues six more and goes offline before delivering them: their bytes are fixed in her store.
  await alice.close();
  const offline = openStore({ path: aliceDb, logger: silentLogger() });
  assert.equal(offline.counts().delivered, 1);
  offline.close();
  alice = await t.make(`alice-${n}-again`, { identity: aliceId, dbPath: aliceDb, ...fast, network: loopbackNetwork(join(t.root, 'nowhere')) });
  const queued: string[] = [];
  for (let i = 0; i < 6; i++) queued.push((await alice.send({ to: bob.identity.onion, subject: 's', body: `m${i}` })).id);
  await alice.close();
  const store = openStore({ path: aliceDb, logger: silentLogger() });
  const envelopes = queued.map((id) => ({ id, envelope: store.getMessage(id)!.envelope! }));
  store.close();
  assert.ok(envelopes.every((e) => e.envelope.length === 1024 && e.envelope[0] === 0x22), 'encrypted when queued, on the session');
  // Someone (a relay, a mailbox, the network) delivers them shuffled, some several times.
  const order = [4, 1, 1, 5, 0, 4, 3, 2, 0, 5, 2, 3];
  const conn = await rawClient(bob);
  await conn.ready;
  const macs = new Map<string, Set<string>>();
  for (const i of order) {
    const e = envelopes[i]!;
    const r = await conn.deliver(fromHex(e.id), e.envelope);
    assert.equal(r.kind, 'receipt', r.kind === 'reject' ? `${e.id}: ${r.code} ${r.reason}` : '');
    if (r.kind === 'receipt') macs.set(e.id, (macs.get(e.id) ?? new Set()).add(toHex(r.mac)));
  }
  await conn.close();
  assert.ok([...macs.values()].every((s) => s.size === 1), 'a replay gets the identical receipt');
  assert.equal(bob.store.counts().inbox, 7, 'one row per message');
  assert.deepEqual(queued.map((id) => bob.store.getMessage(id)?.body), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  // Alice comes back: her retries send the same bytes, get the stored receipts, and end delivered.
  alice = await t.make(`alice-${n}-back`, { identity: aliceId, dbPath: aliceDb, ...fast });
  await eventually(() => queued.every((id) => alice.store.getMessage(id)?.state === 'delivered'), 20_000, 'alice sees every message delivered');
  assert.deepEqual(queued.map((id) => toHex(alice.store.getMessage(id)!.receipt!)), queued.map((id) => [...macs.get(id)!][0]));
  assert.equal(bob.store.counts().inbox, 7);
  await send(bob, alice, 'and the session goes on');
});

test('mail queued under protocol 1 (a sealed-box envelope) is encrypted again after the upgrade and delivered once', async () => {
  const bob = await t.make(`bob-${++n}`, fast);
  const aliceId: Identity = generateIdentity();
  const dir = join(t.root, `upgrade-${n}`);
  mkdirSync(dir);
  const aliceDb = join(dir, 'alice.db');
  // A store as round 1 left it: schema v7, one message queued with a version-1 envelope (a bucket + 48 bytes).
  const db = new Database(aliceDb);
  db.pragma('journal_mode = WAL');
  migrate(db, silentLogger(), MIGRATIONS.filter((m) => m.version <= 7));
  const id = 'ab'.repeat(16);
  const now = Date.now();
  db.prepare(`INSERT INTO messages (id, direction, kind, peer_identity, peer_onion, subject, thread_id, created_at, expires_at, sort_at, state, envelope_hash, next_attempt_at)
    VALUES (?, 'out', 'mail', ?, ?, 'old', ?, ?, ?, ?, 'queued', ?, ?)`).run(id, toHex(bob.identity.identityKey), bob.identity.onion, id, now, now + 3600_000, now, new Uint8Array(32).fill(3), now);
  db.prepare('INSERT INTO message_content (id, body, envelope) VALUES (?, ?, ?)').run(id, 'queued before the upgrade', new Uint8Array(4096 + 48).fill(9));
  db.close();
  const alice = await t.make(`alice-${n}`, { identity: aliceId, dbPath: aliceDb, ...fast });
  assert.equal(alice.store.schemaVersion, MIGRATIONS.at(-1)!.version);
  await eventually(() => alice.store.getMessage(id)?.state === 'delivered', 20_000, 'the old message delivered');
  const out = alice.store.getMessage(id)!;
  assert.equal(out.envelope![0], 0x21, 'as the INIT of a new session');
  assert.equal(bob.store.getMessage(id)?.body, 'queued before the upgrade');
  assert.equal(bob.store.counts().inbox, 1);
});

test('a burst of 300 messages to a new contact: sent in order enough for the tag window, no reset, each delivered once', async () => {
  const alice = await t.make(`alice-${++n}`, { outbox: { perPeerConcurrency: 32 } });
  const bob = await t.make(`bob-${n}`);
  const resets: unknown[] = [];
  alice.events.subscribe((ev) => {
    if (ev.type === 'session.reset') resets.push(ev);
  });
  const sent = await Promise.all(Array.from({ length: 300 }, (_, i) => alice.send({ to: bob.identity.onion, subject: 's', body: `burst ${i}`, wait: true, waitMs: 60_000 })));
  assert.deepEqual(sent.filter((s) => s.state !== 'delivered'), []);
  assert.deepEqual(resets, [], 'no message went beyond the receiver\'s tag window');
  assert.equal(bob.store.counts().inbox, 300);
  // Encrypted once: every envelope is still the one the receipt was checked against.
  assert.ok(sent.every((s) => (alice.store.getMessage(s.id)!.envelope?.length ?? 0) > 0));
});
