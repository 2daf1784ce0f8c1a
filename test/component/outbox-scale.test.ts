/**
 * The outbox at scale, with real nodes, real SQLite files and ws on 127.0.0.1: a contact that is
 * offline costs one dial however much is queued to it, its queue drains as soon as it connects to
 * us, and a restart with a large backlog reads about as much of the database as with a small one.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiClient } from '../../src/api/index.js';
import { toHex } from '../../src/bytes.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import { loopbackNetwork, type PeerNetwork } from '../../src/node/index.js';
import { openStore } from '../../src/store/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-outbox-scale-');
});
after(() => t.cleanup());

/** The loopback network, counting dials per onion. */
function countingNetwork(dir: string): PeerNetwork & { dialsTo(onion: string): number } {
  const base = loopbackNetwork(dir);
  const dials = new Map<string, number>();
  return {
    ...base,
    dial(onion, opts) {
      dials.set(onion, (dials.get(onion) ?? 0) + 1);
      return base.dial(onion, opts);
    },
    dialsTo: (onion) => dials.get(onion) ?? 0,
  };
}

test('300 messages to an offline contact cost one dial; when the contact connects to us they all go at once', async () => {
  const net = countingNetwork(join(t.root, 'loopback'));
  // Steps of 10 minutes: whatever happens after the first failure in this test is not the schedule.
  const alice = await t.make('alice', { network: net, outbox: { policy: { fastBaseMs: 600_000, fastMaxMs: 600_000 } } });
  const bobId = generateIdentity();
  const bobKey = toHex(bobId.identityKey);
  alice.store.upsertContact({ alias: 'bob', identityKey: bobKey, encryptionKey: toHex(bobId.encryptionKey), onion: bobId.onion, source: 'onion' });
  const sent = await Promise.all(Array.from({ length: 300 }, (_, i) => alice.send({ to: 'bob', subject: `m${i}`, body: 'while you were away' })));
  await eventually(() => alice.store.counts().sending === 0 && alice.store.peerState(bobKey)?.failures === 1, 10_000, 'the first attempt to fail');
  assert.equal(net.dialsTo(bobId.onion), 1, 'one dial for 300 messages');
  assert.equal(alice.store.peerState(bobKey)!.lastErrorCode, 'PEER_UNKNOWN');
  assert.equal(alice.store.counts().queued, 300);

  // Bob comes online and writes to Alice: her node sees him and drains his queue without waiting
  // the 10 minutes of the step.
  const bob = await t.make('bob', { identity: bobId });
  const hello = await bob.send({ to: alice.identity.onion, body: 'back', kind: 'chat', wait: true, waitMs: 10_000 });
  assert.equal(hello.state, 'delivered');
  await eventually(() => alice.store.counts().delivered === 300, 30_000, 'the queue to drain');
  assert.ok(sent.every((s) => alice.store.getMessage(s.id)!.state === 'delivered'));
  assert.equal(bob.store.counts().inbox, 300);
  assert.ok(net.dialsTo(bobId.onion) <= 3, `${net.dialsTo(bobId.onion)} dials in all`);
  const state = alice.store.peerState(bobKey)!;
  assert.equal(state.failures, 0);
  assert.ok(state.lastSuccessAt !== null);
});

/** Bytes this process has read through read()/pread() so far (Linux). */
function bytesRead(): number {
  const m = /^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  if (!m) throw new Error('no rchar in /proc/self/io');
  return Number(m[1]);
}

/** A store with `n` messages queued to 20 peers that are backing off, and 20 left 'sending' by a crash. */
function backlog(path: string, n: number): void {
  const store = openStore({ path, logger: silentLogger() });
  const peers = Array.from({ length: 20 }, () => generateIdentity());
  const now = Date.now();
  try {
    for (let done = 0; done < n; ) {
      store.batch(() => {
        for (let i = 0; i < 1000 && done < n; i++, done++) {
          const p = peers[done % peers.length]!;
          store.insertOutgoing({
            id: randomBytes(16).toString('hex'), kind: 'mail', peerIdentity: toHex(p.identityKey), peerOnion: p.onion, subject: `m${done}`,
            body: 'x'.repeat(200), createdAt: now, expiresAt: now + 86_400_000, envelope: randomBytes(256), envelopeHash: randomBytes(32),
          });
        }
      });
    }
    store.batch(() => {
      for (const p of peers) {
        const key = toHex(p.identityKey);
        const [m] = store.dueForPeer(key, now, 1);
        store.transition(m!.id, 'sending', { from: ['queued'] });
        store.recordAttemptStart(m!.id, now);
        store.setPeerState(key, { failures: 8, nextAttemptAt: now + 3_600_000, lastErrorCode: 'PEER_UNKNOWN', lastFailureAt: now });
      }
    });
  } finally {
    store.close();
  }
}

test('restart with a large backlog: start and the first API answers read about as much of the database as with a small one', async (tc) => {
  if (process.platform !== 'linux') return tc.skip('reads are counted through /proc/self/io');
  const read: Record<string, number> = {};
  for (const [name, n] of [['small', 2_000], ['large', 20_000]] as const) {
    const dbPath = join(t.root, `${name}.db`);
    backlog(dbPath, n);
    const token = randomBytes(16).toString('hex');
    const before = bytesRead();
    const node = await t.make(name, { dbPath, api: { token } });
    const api = apiClient(node.apiUrl!, token);
    const status = await api.call<{ counts: Record<string, number> }>('node.status');
    const page = await api.call<unknown[]>('messages.outbox', { limit: 50 });
    read[name] = bytesRead() - before;
    if (process.env.SHOW_READS) console.error(name, read[name]);
    assert.equal(status.counts.queued, n, 'counts are right');
    assert.equal(status.counts.sending, 0, 'what a crash left sending is queued again');
    assert.equal(page.length, 50);
    await node.close();
  }
  // A scan of the messages table would read ten times more for the large store.
  assert.ok(read.large! < 2 * read.small! + 256 * 1024, `bytes read at restart: ${read.small} with 2,000 pending, ${read.large} with 20,000`);
});
