import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { fromHex, toHex } from '../../src/bytes.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { OnionpostNode, loopbackNetwork } from '../../src/node/index.js';
import { PeerConnection, RejectCode, decodeFrame } from '../../src/protocol/index.js';
import { dialWs } from '../../src/transport/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let alice: OnionpostNode;
let bob: OnionpostNode;

before(async () => {
  t = await testNodes();
  alice = await t.make('alice');
  bob = await t.make('bob');
});
after(() => t.cleanup());

const stateOf = (n: OnionpostNode, id: string) => n.store.getMessage(id)?.state;

test('two nodes over ws on 127.0.0.1: mail both ways, receipts verified, inbox and outbox agree', async () => {
  await eventually(() => alice.reachable && bob.reachable, 10_000, 'self-checks');
  // Alice knows only Bob's onion: her node fetches and verifies his bundle at first delivery.
  const sent = await alice.send({ to: bob.identity.onion, subject: 'hello', body: 'hi bob', wait: true, waitMs: 10_000 });
  assert.equal(sent.state, 'delivered');
  const out = alice.store.getMessage(sent.id)!;
  assert.ok(out.receipt && out.envelopeHash);
  assert.equal(out.receipt.length, 16, 'a receipt is a 16-byte MAC');
  assert.equal(out.envelope![0], 0x21, 'the first message to a new peer is an INIT');
  assert.deepEqual(bob.store.getMessage(sent.id)!.receipt, out.receipt, 'the MAC alice checked is the one bob stored after his commit');
  const inbox = (await bob.handlers['messages.inbox']!({})) as { id: string; from: string; subject: string; receivedAt: number }[];
  assert.equal(inbox.length, 1);
  assert.deepEqual([inbox[0]!.id, inbox[0]!.from, inbox[0]!.subject], [sent.id, alice.identity.onion, 'hello']);
  assert.equal(typeof inbox[0]!.receivedAt, 'number');
  const read = (await bob.handlers['messages.get']!({ id: sent.id.slice(0, 8) })) as { id: string; body: string; read: boolean };
  assert.deepEqual([read.id, read.body, read.read], [sent.id, 'hi bob', true], 'found by id prefix, marked read');
  await assert.rejects(Promise.resolve().then(() => bob.handlers['messages.get']!({ id: 'ffffffff' })), { code: 'NOT_FOUND' });

  // Bob replies in the same thread through the API handler (as the CLI would).
  const reply = (await bob.handlers['messages.send']!({ to: alice.identity.onion, subject: 'Re: hello', body: 'hi alice', threadId: sent.id, inReplyTo: sent.id, wait: true })) as { id: string; state: string };
  assert.equal(reply.state, 'delivered');
  const got = alice.store.getMessage(reply.id)!;
  assert.equal(got.direction, 'in');
  assert.equal(got.threadId, sent.id);
  assert.equal(got.inReplyTo, sent.id);
  const thread = (await alice.handlers['messages.thread']!({ threadId: sent.id })) as { id: string }[];
  assert.deepEqual(thread.map((m) => m.id), [sent.id, reply.id]);
  const outbox = (await alice.handlers['messages.outbox']!({})) as { id: string; to: string; state: string }[];
  assert.deepEqual(outbox.map((m) => [m.id, m.state]), [[sent.id, 'delivered']]);
});

test('a contact alias works, and the same DELIVER replayed 100 times stores exactly one row with one receipt', async () => {
  await alice.handlers['contacts.add']!({ alias: 'bob', address: bob.identity.onion });
  const s = await alice.send({ to: 'bob', subject: 'replay me', body: 'x', wait: true });
  assert.equal(s.state, 'delivered');
  const m = alice.store.getMessage(s.id)!;
  const before = bob.store.counts().inbox;
  const channel = await dialWs({ url: `ws://127.0.0.1:${bob.status().listener!.port}/`, limits: DEFAULT_LIMITS });
  const conn = new PeerConnection({ channel, role: 'client' });
  await conn.ready;
  const receipts = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const r = await conn.deliver(fromHex(s.id), m.envelope!);
    assert.equal(r.kind, 'receipt');
    if (r.kind === 'receipt') receipts.add(toHex(r.mac));
  }
  await conn.close();
  assert.equal(receipts.size, 1, 'every replay gets the identical receipt');
  assert.deepEqual([...receipts][0], toHex(m.receipt!));
  assert.equal(bob.store.counts().inbox, before, 'no second row');
});

test('receiver crashes after commit, before the receipt: the sender retries and ends delivered with one row', async () => {
  const net = loopbackNetwork(join(t.root, 'loopback'));
  const carolId = generateIdentity();
  let crash = true;
  let carol: OnionpostNode | undefined;
  carol = await t.make('carol', {
    identity: carolId, network: net,
    hooks: { afterInboundCommit: () => {
      if (!crash) return;
      crash = false;
      // As kill -9 would: every connection cut before a receipt goes out.
      setImmediate(() => carol!.dropConnections());
      throw new Error('crash after commit (test)');
    } },
  });
  const s = await alice.send({ to: carolId.onion, subject: 'survive', body: 'please' });
  await eventually(() => carol!.store.counts().inbox === 1, 10_000, 'carol committed');
  assert.notEqual(stateOf(alice, s.id), 'delivered', 'no receipt was sent');
  await eventually(() => stateOf(alice, s.id) === 'delivered', 20_000, 'alice retried and got the receipt');
  assert.equal(carol.store.counts().inbox, 1, 'the retry did not store a second row');
  assert.ok(alice.store.getMessage(s.id)!.attempts >= 2);
});

test('garbage and oversized frames are answered with REJECT or a close, and the node keeps serving', async () => {
  const url = `ws://127.0.0.1:${bob.status().listener!.port}/`;
  const garbage = await new Promise<{ frames: number[]; code: number }>((resolve) => {
    const ws = new WebSocket(url);
    const frames: number[] = [];
    ws.on('open', () => ws.send(Buffer.from('definitely not a frame')));
    ws.on('message', (d) => {
      try {
        const f = decodeFrame(new Uint8Array(d as Buffer), DEFAULT_LIMITS);
        if (f.type === 'REJECT') frames.push(f.code);
      } catch {
        // not ours to decode
      }
    });
    ws.on('close', (code) => resolve({ frames, code }));
    ws.on('error', () => {});
  });
  assert.ok(garbage.frames.includes(RejectCode.MALFORMED) || garbage.code !== 1000, `garbage got REJECT MALFORMED or an error close (code ${garbage.code})`);
  const big = await new Promise<number>((resolve) => {
    const ws = new WebSocket(url);
    ws.on('open', () => ws.send(Buffer.alloc(DEFAULT_LIMITS.maxFrame + 1)));
    ws.on('close', (code) => resolve(code));
    ws.on('error', () => {});
  });
  assert.equal(big, 1009, 'oversized frame closes with 1009 (message too big)');
  // Envelopes the node cannot place are refused with their codes: a version-1 size names the
  // version, a SESSION envelope of no session we hold is UNKNOWN_SESSION (the sender resets).
  const conn = new PeerConnection({ channel: await dialWs({ url, limits: DEFAULT_LIMITS }), role: 'client' });
  await conn.ready;
  const v1 = await conn.deliver(new Uint8Array(16).fill(1), new Uint8Array(1024 + 48).fill(1));
  assert.deepEqual(v1.kind === 'reject' ? [v1.code, v1.retryable, v1.reason] : v1, [RejectCode.UNSUPPORTED_VERSION, false, 'envelope version 1 is not supported; this node speaks version 2']);
  const stray = new Uint8Array(1024).fill(7);
  stray[0] = 0x22;
  const r = await conn.deliver(new Uint8Array(16).fill(2), stray);
  assert.deepEqual(r.kind === 'reject' ? [r.code, r.retryable] : r, [RejectCode.UNKNOWN_SESSION, false]);
  await conn.close();
  const ok = await alice.send({ to: bob.identity.onion, subject: 'still there?', body: 'yes', wait: true });
  assert.equal(ok.state, 'delivered');
});

test('bad recipients get typed errors; sending to yourself is refused', async () => {
  await assert.rejects(alice.send({ to: 'not an address!', body: 'x' }), { code: 'UNKNOWN_RECIPIENT' });
  await assert.rejects(alice.send({ to: 'alice', body: 'x' }), { code: 'NO_REGISTRY' });
  await assert.rejects(alice.send({ to: alice.identity.onion, body: 'x' }), { code: 'SELF' });
  const mistyped = bob.identity.onion.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'));
  await assert.rejects(alice.send({ to: mistyped, body: 'x' }), { code: 'BAD_ONION_ADDRESS' });
});
