/**
 * Offline delivery through mailbox providers on the private Tor network (issue 11, "Done when"):
 * a sender A, a recipient B and two providers P1, P2 (nodes in the provider role), each a whole
 * node owning its tor, every request through Tor between onions. In order:
 *   1. B subscribes at P1 and P2; A (subscribed at P2) and B agree a session on a direct message;
 *      A has learned from B's signed bundle that P1 and P2 keep his mail.
 *   2. B stops; A's message is `in_mailbox` at both providers.
 *   3. B starts: it fetches, commits, acknowledges (both providers delete it, and tell B over
 *      ACCOUNT that they hold nothing for him), pushes his receipt: A shows `delivered`.
 *   4. P1 stops, B stops: A's message is held by P2 alone; B starts, gets it from P2: `delivered`.
 *   5. A and B offline at different times: A's message waits at P2, A stops, B starts and fetches;
 *      his receipt cannot reach A's node, so it waits at A's provider (a RECEIPTS envelope); B
 *      stops, A starts: `delivered` from its own fetch.
 *   6. DEPOSITs refused over Tor with their codes: no (or a wrong) capability for a private queue,
 *      a bad size, over quota; nothing of them is stored.
 * Then two more tests on the same network: a hidden node (its identity's onion never published;
 * its contact is told the direct onion and delivers there), and a provider in a child process,
 * owning its tor, SIGKILLed while DEPOSITs from A's tor are in flight: after a restart on the same
 * files every receipted deposit is held with its bytes, none twice.
 * Schedules are shortened through the nodes' options (dial budget, fetch interval), never by
 * waiting them out. No tor is left running.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import { systemClock } from '../../src/clock.js';
import { generateIdentity, type Identity } from '../../src/crypto/index.js';
import { OnionpostError, hasCode } from '../../src/errors.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import type { NodeOptions } from '../../src/node/index.js';
import { MAILBOX_PATH, MailboxClient, MailboxErrorCode, ProviderError, type DepositReceipt, type HeldItem } from '../../src/provider/index.js';
import { kill9, startCrashChild } from '../fixtures/crash-child.js';
import { eventually } from '../fixtures/nodes.js';

const CRASH_CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'node-crash-child.js');
import { processesMentioning, retryUntil, torNodes, type TorNode, type TorNodes } from '../fixtures/tor.js';

/** Each provider holds at most this much per user: one 16 KiB envelope fills it (step 6). */
const QUOTA = 16_384;
/** Deadline of each wait for something Tor carries (a dial, a rendezvous, a descriptor). */
const WAIT = 90_000;

let nodes: TorNodes;
let id: Record<'a' | 'b' | 'p1' | 'p2', Identity>;
let a: TorNode;
let b: TorNode;
let p1: TorNode;
let p2: TorNode;

/** A and B: a short dial budget (a departed onion is given up on in 10 s) and a fetch every 3 s. */
const user: Partial<NodeOptions> = { dialTimeoutMs: 10_000, mailboxFetchMs: 3_000 };
const provider = (name: string): Partial<NodeOptions> => ({ provider: { dbPath: join(nodes.root, name, 'provider.db'), limits: { quotaBytes: QUOTA } } });
const startA = () => nodes.start('a', id.a, user);
const startB = () => nodes.start('b', id.b, user);

before(async () => {
  nodes = await torNodes('onionpost-tor-offline-'); // (crypto is ready after it)
  id = { a: generateIdentity(), b: generateIdentity(), p1: generateIdentity(), p2: generateIdentity() };
});

after(async () => {
  await nodes.cleanup();
  assert.deepEqual(nodes.torsRunning(), [], 'no tor of this test is left running');
  assert.deepEqual(processesMentioning(nodes.root), [], 'no process of this test is left');
});

/** The message as `messages.outbox` shows it (what `outbox --json` prints). */
function shown(n: TorNode, msgId: string): { state: string; mailboxes?: string[] } {
  const list = n.node.handlers['messages.outbox']!({ limit: 100 }) as { id: string; state: string; mailboxes?: string[] }[];
  const m = list.find((x) => x.id === msgId);
  assert.ok(m, `message ${msgId} is in the outbox`);
  return m;
}

const held = (p: TorNode) => p.node.status().provider?.held;

/** B's providers as his `status --json` shows them: what each last said (ACCOUNT) it holds for him. */
function heldForB(): (number | undefined)[] {
  return b.node.status().mailboxes.map((m) => m.held?.count);
}

/**
 * `mailboxes add` as a user would run it, again after UNREACHABLE: a first dial to an onion can
 * outlast the shortened 10 s budget on a loaded machine (the node itself retries only mail).
 */
async function subscribe(n: TorNode, p: Identity): Promise<void> {
  await retryUntil(() => n.node.handlers['mailboxes.add']!({ onion: p.onion }) as Promise<unknown>, { deadlineMs: WAIT, pauseMs: 1_000, retryIf: (err) => hasCode(err, 'UNREACHABLE') });
}

const send = (subject: string, body: string) => a.node.send({ to: id.b.onion, subject, body });

/** A mailbox client of the test's own, through A's tor's SOCKS port, to `to`'s /mailbox/v1. */
async function mailboxClient(to: Identity): Promise<MailboxClient> {
  const { value: channel } = await retryUntil(() => a.net.dial(to.onion, { signal: AbortSignal.timeout(30_000), timeoutMs: 30_000, limits: DEFAULT_LIMITS, path: MAILBOX_PATH }), { deadlineMs: WAIT, pauseMs: 1_000 });
  return new MailboxClient({ channel, providerKey: to.identityKey, clock: systemClock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
}

test('offline delivery over Tor: two providers, one down, sender and recipient offline at different times, refusals', { timeout: 600_000 }, async (t) => {
  const t0 = Date.now();
  const lap = (what: string) => t.diagnostic(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  [p1, p2, a, b] = await Promise.all([nodes.start('p1', id.p1, provider('p1')), nodes.start('p2', id.p2, provider('p2')), startA(), startB()]);
  await eventually(() => [p1, p2, a, b].every((n) => n.node.reachable), WAIT * 2, 'every onion reachable');
  lap('four nodes reachable');

  // 1. B's providers, in his signed bundle; A's own provider; a session agreed on a direct message.
  await subscribe(b, id.p1);
  await subscribe(b, id.p2);
  await subscribe(a, id.p2);
  assert.deepEqual(b.node.status().mailboxes.map((m) => m.onion), [id.p1.onion, id.p2.onion]);
  const first = await a.node.send({ to: id.b.onion, subject: 'hello', body: 'direct, both online', wait: true, waitMs: WAIT });
  assert.equal(first.state, 'delivered');
  assert.deepEqual(a.node.store.deposits.peerMailboxes(toHex(id.b.identityKey)), [id.p1.onion, id.p2.onion], "B's bundle, as A verified it, lists both providers");
  assert.deepEqual(b.node.store.deposits.peerMailboxes(toHex(id.a.identityKey)), [id.p2.onion], "A's bundle lists hers");
  lap('step 1: subscribed, session agreed');

  // 2. B offline: the message is left at both his providers, not delivered.
  await nodes.stop(b);
  const m2 = await send('while you were away', 'kept by both your providers');
  await eventually(() => shown(a, m2.id).state === 'in_mailbox' && shown(a, m2.id).mailboxes?.length === 2, WAIT, 'in mailbox at two providers');
  assert.deepEqual([...shown(a, m2.id).mailboxes!].sort(), [id.p1.onion, id.p2.onion].sort());
  assert.equal(a.node.store.deposits.list(m2.id).length, 2, "both providers' signed receipts are kept");
  assert.deepEqual([held(p1), held(p2)], [1, 1]);
  assert.notEqual(a.node.store.getMessage(m2.id)!.state, 'delivered');
  lap('step 2: in mailbox at P1 and P2');

  // 3. B back: fetched, committed once, acknowledged (both delete it), receipt pushed to A.
  const back = Date.now();
  b = await startB();
  await eventually(() => b.node.store.getMessage(m2.id) !== null, WAIT, 'B fetched the message');
  assert.equal(b.node.store.getMessage(m2.id)!.body, 'kept by both your providers');
  await eventually(() => a.node.store.getMessage(m2.id)!.state === 'delivered', WAIT, 'A sees delivered, on B\'s receipt');
  assert.equal(shown(a, m2.id).state, 'delivered');
  await eventually(() => held(p1) === 0 && held(p2) === 0, WAIT, 'both providers deleted it');
  // What each provider itself tells B (ACCOUNT, asked at each of his fetch rounds) after that.
  await eventually(() => b.node.status().mailboxes.every((m) => (m.accountCheckedAt ?? 0) > back && m.held?.count === 0) , WAIT, 'both providers say they hold nothing for B');
  assert.deepEqual(heldForB(), [0, 0]);
  const inbox = b.node.handlers['messages.inbox']!({ limit: 100 }) as { id: string }[];
  assert.equal(inbox.filter((m) => m.id === m2.id).length, 1, 'fetched from two providers, stored once');
  lap('step 3: fetched, delivered, deleted at both');

  // 4. One provider down: the other takes it and serves it.
  await Promise.all([nodes.stop(p1), nodes.stop(b)]);
  const m4 = await send('only P2', 'P1 is down');
  await eventually(() => shown(a, m4.id).state === 'in_mailbox', WAIT, 'in mailbox');
  assert.deepEqual(shown(a, m4.id).mailboxes, [id.p2.onion]);
  assert.equal(held(p2), 1);
  b = await startB();
  await eventually(() => b.node.store.getMessage(m4.id) !== null, WAIT, 'B fetched it from P2');
  await eventually(() => a.node.store.getMessage(m4.id)!.state === 'delivered', WAIT, 'A sees delivered');
  await eventually(() => held(p2) === 0, WAIT, 'P2 deleted it');
  lap('step 4: P1 down, served by P2');

  // 5. Never online together: B's receipt waits for A at her provider.
  await nodes.stop(b);
  const m5 = await send('ships in the night', 'we are never online together');
  await eventually(() => shown(a, m5.id).state === 'in_mailbox', WAIT, 'in mailbox');
  assert.deepEqual(shown(a, m5.id).mailboxes, [id.p2.onion]);
  await nodes.stop(a);
  const bBack = Date.now();
  b = await startB();
  await eventually(() => b.node.store.getMessage(m5.id) !== null, WAIT, 'B fetched it');
  // Once B's round at P2 is over his copy is acknowledged: what P2 holds then is the receipt, for A.
  const doneAtP2 = () => (b.node.status().mailboxes.find((m) => m.onion === id.p2.onion)?.lastFetchAt ?? 0) > bBack;
  await eventually(() => doneAtP2() && held(p2) === 1, WAIT, "B's receipt waits at A's provider");
  await nodes.stop(b);
  a = await startA();
  // B is gone again: only A's own fetch (the RECEIPTS envelope at P2) can tell her.
  await eventually(() => a.node.store.getMessage(m5.id)!.state === 'delivered', WAIT, 'A sees delivered');
  await eventually(() => held(p2) === 0, WAIT, 'A acknowledged the RECEIPTS envelope');
  lap('step 5: receipt through the sender\'s provider');

  // 6. Refusals at P2, over Tor, each with its code; nothing of them is stored.
  const c = await mailboxClient(id.p2);
  try {
    const u = generateIdentity();
    const queue = randomBytes(16);
    const write = randomBytes(32);
    const read = randomBytes(32);
    await c.subscribe(u, null, { timeoutMs: 30_000 });
    await c.createQueue(u, queue, { write, read }, { timeoutMs: 30_000 });
    const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (e: unknown) => (e instanceof ProviderError && e.code === 'REMOTE' ? `${e.remoteCode}/${e.retryable}` : `other: ${String(e)}`));
    const NO_CAP = `${MailboxErrorCode.NO_CAPABILITY}/false`;
    assert.equal(await refused(c.deposit(queue, null, randomBytes(1024))), NO_CAP, 'a private queue, no write capability');
    assert.equal(await refused(c.deposit(queue, randomBytes(32), randomBytes(1024))), NO_CAP, 'a wrong write capability');
    assert.equal(await refused(c.deposit(queue, write, randomBytes(1000))), `${MailboxErrorCode.BAD_SIZE}/false`, 'not an envelope size');
    assert.equal((await c.account(u)).heldCount, 0, 'nothing refused was stored');
    await c.deposit(queue, write, randomBytes(QUOTA)); // the whole quota
    assert.equal(await refused(c.deposit(queue, write, randomBytes(1024))), `${MailboxErrorCode.OVER_QUOTA}/true`, 'over quota (retryable: the owner may fetch)');
    const acct = await c.account(u);
    assert.deepEqual([acct.heldCount, acct.heldBytes, acct.quotaBytes], [1, QUOTA, QUOTA]);
  } finally {
    await c.close();
  }
  lap('step 6: refusals');
});

test('a hidden user over Tor: the onion its identity names is not there; its contact is told the direct one and delivers to it', { timeout: 300_000 }, async () => {
  // A runs (the last test started her again). H runs hidden from its first start: its identity's
  // onion was never published.
  const hId = generateIdentity();
  const h = await nodes.start('h', hId, { ...user, directSeed: new Uint8Array(randomBytes(32)) });
  try {
    const direct = h.node.status().hidden!.directOnion;
    await assert.rejects(a.net.dial(hId.onion, { signal: AbortSignal.timeout(30_000), timeoutMs: 30_000, limits: DEFAULT_LIMITS }),
      (err: unknown) => err instanceof OnionpostError, 'nobody is at the onion the identity names');
    await retryUntil(() => h.node.handlers['contacts.add']!({ alias: 'a', address: id.a.onion }) as Promise<unknown>, { deadlineMs: WAIT, pauseMs: 1_000 });
    const hi = await h.node.send({ to: id.a.onion, subject: 'hi', body: 'from a hidden node', wait: true, waitMs: WAIT });
    assert.equal(hi.state, 'delivered');
    await eventually(() => a.node.store.contactQueues.theirOnion(toHex(hId.identityKey)) === direct, WAIT, 'A was told the direct onion');
    // A writes to the identity's onion (what the registry gives); her node dials the direct one.
    const r = await a.node.send({ to: hId.onion, subject: 're', body: 'straight to you', wait: true, waitMs: WAIT });
    assert.equal(r.state, 'delivered');
    assert.equal(h.node.store.getMessage(r.id)?.body, 'straight to you');
    assert.deepEqual(a.node.store.getMessage(r.id)!.mailboxes, [], 'directly, not through a provider');
  } finally {
    await nodes.stop(h);
  }
});

test('a provider killed with kill -9 mid-deposit over Tor loses nothing it receipted', { timeout: 400_000 }, async () => {
  // The provider is a node in a child process owning its tor (test/fixtures/node-crash-child.ts),
  // SIGKILLed while DEPOSITs from A's tor are in flight; its tor dies with it.
  const dir = join(nodes.root, 'pk');
  const pk = generateIdentity();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'identity.json'), JSON.stringify({ seed: toHex(pk.seed), encryptionSecret: toHex(pk.encryptionSecret) }), { mode: 0o600 });
  const children = new Set<ChildProcess>();
  const start = () => startCrashChild(CRASH_CHILD, [dir, 'tor', '--provider'], children, 'the provider', 180_000);
  const torGone = () => eventually(() => processesMentioning(dir).length === 0, 60_000, "the killed provider's tor exited");
  const u = generateIdentity();
  const queue = randomBytes(16);
  const read = randomBytes(32);
  try {
    let child = await start();
    let c = await mailboxClient(pk);
    const receipts: DepositReceipt[] = [];
    const sent: Uint8Array[] = [];
    try {
      await c.subscribe(u, null, { timeoutMs: 30_000 });
      await c.createQueue(u, queue, { write: null, read }, { timeoutMs: 30_000 });
      const inFlight = Array.from({ length: 64 }, () => {
        const env = new Uint8Array(randomBytes(1024));
        sent.push(env);
        return c.deposit(queue, null, env, { timeoutMs: 120_000 }).then((r) => void receipts.push(r), () => {});
      });
      await eventually(() => receipts.length >= 8, WAIT, 'some deposits receipted');
      await kill9(child);
      await Promise.all(inFlight);
    } finally {
      await c.close();
    }
    assert.ok(receipts.length >= 8 && receipts.length < sent.length, `killed mid-burst: ${receipts.length} of ${sent.length} receipted`);
    await torGone();

    child = await start();
    c = await mailboxClient(pk);
    try {
      const held: HeldItem[] = [];
      for (let after = 0, page = 0; page < 100; page++) {
        const items = await c.fetch(queue, read, after, 64, { timeoutMs: 30_000 });
        if (items.length === 0) break;
        held.push(...items);
        after = items[items.length - 1]!.seq;
      }
      const bySeq = new Map(held.map((h) => [h.seq, toHex(createHash('sha256').update(h.envelope).digest())]));
      for (const r of receipts) assert.equal(bySeq.get(r.seq), toHex(r.digest), `receipted deposit ${r.seq} is held, with its bytes`);
      assert.equal(new Set(held.map((h) => toHex(createHash('sha256').update(h.envelope).digest()))).size, held.length, 'nothing held twice');
    } finally {
      await c.close();
    }
    await kill9(child);
    await torGone();
  } finally {
    for (const ch of children) ch.kill('SIGKILL');
  }
});
