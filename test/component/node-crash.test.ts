/**
 * kill -9 of the receiving node at random moments, many rounds over: Bob runs as a child process
 * (test/fixtures/node-crash-child.ts) that Alice's node keeps sending to, and that answers some of
 * her messages (so his side of the session sends too). After each kill: every message Alice holds
 * as delivered is in Bob's database, every answer Bob holds as delivered is in Alice's, nobody has
 * a message twice; after each restart the session works at once, with no reset. In the end every
 * message arrives exactly once.
 *
 * Default size fits `npm test` (50 rounds of a 6-message burst); the full size runs with
 *   ONIONPOST_CRASH_ROUNDS=300 ONIONPOST_CRASH_BURST=16 node dist/test/run.js --tier component --grep node-crash
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../src/bytes.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import { loopbackNetwork, type OnionpostNode } from '../../src/node/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { kill9, startCrashChild } from '../fixtures/crash-child.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { tappedNetwork } from '../fixtures/wire-tap.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, '..', 'fixtures', 'node-crash-child.js');
const ROUNDS = Number(process.env['ONIONPOST_CRASH_ROUNDS'] ?? 50);
const BURST = Number(process.env['ONIONPOST_CRASH_BURST'] ?? 6);
/** After a random one of the burst's DELIVERs left Alice, the kill waits up to this long more. */
const MAX_KILL_DELAY_MS = 6;

let t: TestNodes;
const children = new Set<ChildProcess>();
before(async () => {
  t = await testNodes('onionpost-node-crash-');
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t.cleanup();
});

const startBob = (dir: string, loopback: string) => startCrashChild(CHILD, [dir, loopback], children, 'bob');

const inbox = (s: Store) => s.listMessages({ direction: 'in', limit: 1000 });
const deliveredOut = (s: Store) => s.listMessages({ direction: 'out', state: 'delivered', limit: 1000 });

/** What holds after every kill: acknowledged means stored, on both sides, and nothing twice. */
function checkAcknowledged(alice: OnionpostNode, bobDb: string, round: number): { aliceAcked: number; bobAcked: number } {
  const bob = openStore({ path: bobDb, logger: silentLogger() });
  try {
    const aliceAcked = deliveredOut(alice.store);
    for (const m of aliceAcked) assert.equal(bob.getMessage(m.id)?.body, m.body, `round ${round}: Alice's ${m.body} was acknowledged but Bob lost it`);
    const bobAcked = deliveredOut(bob);
    for (const m of bobAcked) assert.equal(alice.store.getMessage(m.id)?.body, m.body, `round ${round}: Bob's ${m.body} was acknowledged but Alice lost it`);
    for (const s of [inbox(bob), inbox(alice.store)]) {
      const bodies = s.map((m) => m.body);
      assert.equal(new Set(bodies).size, bodies.length, `round ${round}: a message stored twice`);
    }
    return { aliceAcked: aliceAcked.length, bobAcked: bobAcked.length };
  } finally {
    bob.close();
  }
}

test(`kill -9 of the receiver at random points, ${ROUNDS} rounds: no acknowledged message lost or doubled, the session works after every restart`, { timeout: 20 * 60_000 }, async (tc) => {
  const loopback = join(t.root, 'loopback');
  const bobDir = join(t.root, 'bob');
  mkdirSync(bobDir, { mode: 0o700 });
  const bobId = generateIdentity();
  writeFileSync(join(bobDir, 'identity.json'), JSON.stringify({ seed: toHex(bobId.seed), encryptionSecret: toHex(bobId.encryptionSecret) }));
  const bobDb = join(bobDir, 'node.db');
  let onDeliver = () => {};
  const network = tappedNetwork(loopbackNetwork(loopback), (f) => {
    if (f.dir === 'out' && f.frame.type === 'DELIVER') onDeliver();
  });
  const alice = await t.make('alice', { network, outbox: { policy: { fastBaseMs: 50, fastMaxMs: 200, slowBaseMs: 200, slowMaxMs: 400, busyMs: 20 } } });
  const resets: unknown[] = [];
  alice.events.subscribe((ev) => {
    if (ev.type === 'session.reset') resets.push(ev);
  });
  const sent: string[] = [];
  let acked = { aliceAcked: 0, bobAcked: 0 };
  let interrupted = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const bob = await startBob(bobDir, loopback);
    // The session works at once after the restart: a message goes through and back.
    onDeliver = () => {};
    const probe = await alice.send({ to: bobId.onion, subject: 'probe', body: `probe ${round}`, wait: true, waitMs: 30_000 });
    assert.equal(probe.state, 'delivered', `round ${round}: ${probe.reason ?? ''}`);
    sent.push(`probe ${round}`);
    // The kill point: a random few milliseconds after a random one of the burst's DELIVERs left
    // Alice: anywhere in Bob's opening, committing and answering.
    const killAfter = 1 + Math.floor(Math.random() * BURST);
    let seen = 0;
    let reached!: () => void;
    const enough = new Promise<void>((r) => (reached = r));
    onDeliver = () => {
      if (++seen >= killAfter) reached();
    };
    const burst = Array.from({ length: BURST }, (_, i) => ({ subject: i % 2 === 1 ? 'reply' : 'm', body: `m ${round}.${i}` }));
    await Promise.all(burst.map((b) => alice.send({ to: bobId.onion, ...b })));
    sent.push(...burst.map((b) => b.body));
    await Promise.race([enough, new Promise((r) => setTimeout(r, 5_000))]);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * MAX_KILL_DELAY_MS)));
    onDeliver = () => {};
    await kill9(bob);
    acked = checkAcknowledged(alice, bobDb, round);
    if (acked.aliceAcked < sent.length) interrupted++;
  }
  tc.diagnostic(`${interrupted} of ${ROUNDS} kills landed with Alice's messages unacknowledged`);
  // The kills must hit work in progress, or this test shows nothing.
  assert.ok(interrupted > 0, `none of ${ROUNDS} kills interrupted a delivery`);

  // Bob once more, and to the end: everything arrives, once (his answers too).
  const bob = await startBob(bobDir, loopback);
  const bobPending = () => {
    const db = new Database(bobDb, { readonly: true });
    try {
      return (db.prepare(`SELECT count(*) AS n FROM messages WHERE direction = 'out' AND state <> 'delivered'`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  await eventually(() => deliveredOut(alice.store).length === sent.length && bobPending() === 0, 60_000, 'everything delivered both ways');
  await kill9(bob);
  checkAcknowledged(alice, bobDb, ROUNDS);
  const bobStore = openStore({ path: bobDb, logger: silentLogger() });
  try {
    assert.deepEqual(inbox(bobStore).map((m) => m.body).sort(), [...sent].sort(), 'every message of Alice\'s exactly once');
    for (const m of inbox(alice.store)) assert.match(m.body, /^re: m \d+\.\d+$/);
  } finally {
    bobStore.close();
  }
  assert.deepEqual(resets, [], 'no session had to be reset: the ratchet state always moved with its message');
});
