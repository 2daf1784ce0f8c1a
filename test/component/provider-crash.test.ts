/**
 * kill -9 of a mailbox provider in the middle of deposits (issue 11, "Done when"): the provider is
 * a whole node in the provider role, in a child process (test/fixtures/node-crash-child.ts
 * --provider: real SQLite files, real ws on 127.0.0.1, the loopback network), that the test
 * SIGKILLs while many DEPOSITs are on their way over several connections, after some of their
 * signed receipts came back. After each kill the provider's store opens cleanly and its accounting
 * adds up; after each restart on the same files, every deposit whose receipt (signature verified)
 * the depositor holds is fetched back at the receipt's seq with the receipt's digest, nothing is held
 * twice, and a retry of every unanswered deposit is held exactly once (at its first seq if the
 * provider had committed it before it died).
 *
 * Also the typed refusals of a DEPOSIT over real ws: no capability, over quota, bad size.
 *
 * Default size fits `npm test`; more rounds with
 *   ONIONPOST_PROVIDER_CRASH_ROUNDS=50 node dist/test/run.js --tier component --grep provider-crash
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../src/bytes.js';
import { systemClock } from '../../src/clock.js';
import { generateIdentity, type Identity } from '../../src/crypto/index.js';
import { DEFAULT_LIMITS, PADDING_BUCKETS } from '../../src/limits.js';
import { silentLogger } from '../../src/log.js';
import { loopbackNetwork } from '../../src/node/index.js';
import {
  MAILBOX_PATH, MailboxClient, MailboxErrorCode, ProviderError, ProviderStore, decodeMailboxAnswer, verifyDepositReceipt,
  type DepositReceipt, type HeldItem,
} from '../../src/provider/index.js';
import type { MessageChannel } from '../../src/transport/index.js';
import { kill9, startCrashChild } from '../fixtures/crash-child.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, '..', 'fixtures', 'node-crash-child.js');
const ROUNDS = Number(process.env['ONIONPOST_PROVIDER_CRASH_ROUNDS'] ?? 5);
const CONNECTIONS = 4;
/** Deposits sent at once on each connection: the service's line per connection (maxQueued), so none is refused BUSY. */
const PER_CONNECTION = 32;
const BURST = CONNECTIONS * PER_CONNECTION;
const ENVELOPE = 1024;
/** Pages of one FETCH-everything (64 envelopes a page): far more than the test ever holds. */
const MAX_PAGES = 1_000;

let t: TestNodes;
const children = new Set<ChildProcess>();
before(async () => {
  t = await testNodes('onionpost-provider-crash-');
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t.cleanup();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function mailboxClient(loopback: string, provider: Identity): Promise<MailboxClient> {
  const channel = await loopbackNetwork(loopback).dial(provider.onion, { signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, limits: {}, path: MAILBOX_PATH });
  return new MailboxClient({ channel, providerKey: provider.identityKey, clock: systemClock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
}

async function fetchAll(c: MailboxClient, queue: Uint8Array, read: Uint8Array): Promise<HeldItem[]> {
  const all: HeldItem[] = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const items = await c.fetch(queue, read, all.at(-1)?.seq ?? 0, undefined, { timeoutMs: 30_000 });
    if (items.length === 0) return all;
    all.push(...items);
  }
  throw new Error(`more than ${MAX_PAGES} pages held`);
}

/** The store after a kill: it opens (WAL recovery, migrations), passes SQLite's own checks, and its byte and seq accounting adds up. */
function checkStoreOpens(path: string, round: number): void {
  const store = new ProviderStore({ path, logger: silentLogger(), isEnvelopeSize: (n) => (PADDING_BUCKETS as readonly number[]).includes(n) });
  const db = new Database(path, { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}: integrity_check`);
    assert.deepEqual(db.pragma('foreign_key_check'), [], `round ${round}: foreign keys`);
    const bad = db.prepare(`SELECT a.id FROM accounts a WHERE a.used_bytes <>
      (SELECT coalesce(sum(length(h.envelope)), 0) FROM held h JOIN queues q ON q.id = h.queue_id WHERE q.account_id = a.id)`).all();
    assert.deepEqual(bad, [], `round ${round}: an account's used bytes differ from what it holds`);
    const seqs = db.prepare('SELECT q.next_seq AS next, (SELECT max(seq) FROM held h WHERE h.queue_id = q.id) AS top FROM queues q').all() as { next: number; top: number | null }[];
    for (const s of seqs) assert.ok(s.top === null || s.next > s.top, `round ${round}: next seq ${s.next} not past the held ${s.top}`);
  } finally {
    db.close();
    store.close();
  }
}

interface Deposit {
  envelope: Uint8Array;
  digest: string;
  receipt: DepositReceipt | null;
}

test(`kill -9 of a provider mid-deposit, ${ROUNDS} rounds of ${BURST} concurrent deposits: nothing it receipted is lost, nothing is held twice`, { timeout: 10 * 60_000 }, async (tc) => {
  const loopback = join(t.root, 'loopback');
  const dir = join(t.root, 'provider');
  mkdirSync(dir, { mode: 0o700 });
  const provider = generateIdentity();
  writeFileSync(join(dir, 'identity.json'), JSON.stringify({ seed: toHex(provider.seed), encryptionSecret: toHex(provider.encryptionSecret) }));
  const dbPath = join(dir, 'provider.db');
  const start = () => startCrashChild(CHILD, [dir, loopback, '--provider'], children, 'provider');
  const user = generateIdentity();
  const queue = randomBytes(16);
  const write = randomBytes(32);
  const read = randomBytes(32);

  const deposits: Deposit[] = [];
  const totals = { inFlightAtKill: [] as number[], answeredAfterKill: 0, unanswered: 0, committedUnanswered: 0 };

  /** After a restart: what the depositors were told is held, and nothing twice; then every unanswered deposit retried, held once. */
  const verifyAndRetry = async (round: number) => {
    const c = await mailboxClient(loopback, provider);
    try {
      const held = await fetchAll(c, queue, read);
      const bySeq = new Map(held.map((h) => [h.seq, sha(h.envelope)]));
      const seqOf = new Map(held.map((h) => [sha(h.envelope), h.seq]));
      assert.equal(seqOf.size, held.length, `round ${round}: an envelope held twice`);
      for (const d of deposits) {
        if (!d.receipt) continue;
        assert.equal(bySeq.get(d.receipt.seq), d.digest, `round ${round}: the provider receipted ${d.digest.slice(0, 16)} at seq ${d.receipt.seq} and lost it`);
      }
      const known = new Set(deposits.map((d) => d.digest));
      for (const h of held) assert.ok(known.has(sha(h.envelope)), `round ${round}: seq ${h.seq} holds an envelope nobody deposited`);
      // A sender retries what got no answer: the provider holds it once, at its first seq if it had committed it.
      const unanswered = deposits.filter((d) => !d.receipt);
      for (let i = 0; i < unanswered.length; i += PER_CONNECTION) {
        await Promise.all(unanswered.slice(i, i + PER_CONNECTION).map(async (d) => {
          const before = seqOf.get(d.digest);
          d.receipt = await c.deposit(queue, write, d.envelope, { timeoutMs: 30_000 });
          assert.ok(verifyDepositReceipt(provider.identityKey, d.receipt, d.envelope));
          if (before !== undefined) {
            totals.committedUnanswered++;
            assert.equal(d.receipt.seq, before, `round ${round}: a retried deposit the provider already held got a new seq`);
          }
        }));
      }
      const after = await fetchAll(c, queue, read);
      assert.deepEqual(after.map((h) => sha(h.envelope)).sort(), deposits.map((d) => d.digest).sort(), `round ${round}: every deposit held exactly once after the retries`);
    } finally {
      await c.close();
    }
  };

  for (let round = 0; round < ROUNDS; round++) {
    const child = await start();
    if (round === 0) {
      const c = await mailboxClient(loopback, provider);
      await c.subscribe(user, null);
      await c.createQueue(user, queue, { write, read });
      await c.close();
    } else {
      await verifyAndRetry(round);
    }

    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => mailboxClient(loopback, provider)));
    // The kill point: when a random one of the first half of the burst's receipts arrives.
    const killAfter = 1 + Math.floor(Math.random() * (BURST / 2));
    let receipts = 0;
    let killed = false;
    let inFlight = 0;
    const killNow = () => {
      if (killed) return;
      killed = true;
      inFlight = BURST - receipts;
      child.kill('SIGKILL');
    };
    const burst: Deposit[] = Array.from({ length: BURST }, () => {
      const envelope = randomBytes(ENVELOPE);
      return { envelope, digest: sha(envelope), receipt: null };
    });
    deposits.push(...burst);
    const refusals: string[] = [];
    const sends = burst.map(async (d, i) => {
      try {
        const r = await clients[i % CONNECTIONS]!.deposit(queue, write, d.envelope, { timeoutMs: 60_000 });
        assert.ok(verifyDepositReceipt(provider.identityKey, r, d.envelope), 'a receipt that does not verify');
        d.receipt = r;
        if (killed) totals.answeredAfterKill++;
        else if (++receipts >= killAfter) killNow();
      } catch (err) {
        // Only the kill may end a deposit without a receipt: the connection closes under it.
        if (!(killed && err instanceof ProviderError && err.code === 'CLOSED')) refusals.push(`${killed ? 'after' : 'before'} the kill: ${String(err)}`);
      }
    });
    // Bounded: if the receipts never come, kill anyway (the assertions below then say why).
    const guard = setTimeout(killNow, 30_000);
    await Promise.all(sends);
    clearTimeout(guard);
    killNow();
    await kill9(child);
    await Promise.all(clients.map((c) => c.close()));
    assert.deepEqual(refusals, [], `round ${round}: deposits ended otherwise than by the kill`);
    totals.inFlightAtKill.push(inFlight);
    totals.unanswered += burst.filter((d) => !d.receipt).length;
    checkStoreOpens(dbPath, round);
  }

  const child = await start();
  await verifyAndRetry(ROUNDS);
  await kill9(child);
  checkStoreOpens(dbPath, ROUNDS);
  tc.diagnostic(`deposits in flight at each kill: ${totals.inFlightAtKill.join(', ')} (of ${BURST}); ${totals.answeredAfterKill} receipts arrived after a kill; `
    + `${totals.unanswered} deposits got no answer, of which ${totals.committedUnanswered} the provider had committed`);
  // The kills must hit deposits in progress, or this test shows nothing.
  assert.ok(totals.unanswered > 0, `none of ${ROUNDS} kills interrupted a deposit`);
});

test('a deposit without capability, over quota or of a bad size is refused with its code over ws; nothing is stored', async () => {
  const provider = generateIdentity();
  const node = await t.make('refusing', { identity: provider, provider: { dbPath: join(t.root, 'refusing-held.db'), limits: { quotaBytes: 4096 } } });
  const loopback = join(t.root, 'loopback');
  const c = await mailboxClient(loopback, provider);
  const user = generateIdentity();
  const queue = randomBytes(16);
  const write = randomBytes(32);
  const read = randomBytes(32);
  await c.subscribe(user, null);
  await c.createQueue(user, queue, { write, read });
  const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (e: unknown) => e instanceof ProviderError && e.code === 'REMOTE' ? `${e.remoteCode}/${e.retryable}` : `other: ${String(e)}`);
  const env = (n: number) => randomBytes(n);

  const NO_CAP = `${MailboxErrorCode.NO_CAPABILITY}/false`;
  assert.equal(await refused(c.deposit(queue, null, env(1024))), NO_CAP, 'a private queue without a write capability');
  assert.equal(await refused(c.deposit(queue, randomBytes(32), env(1024))), NO_CAP, 'a wrong write capability');
  assert.equal(await refused(c.deposit(queue, read, env(1024))), NO_CAP, 'the read capability does not write');
  assert.equal(await refused(c.deposit(randomBytes(16), write, env(1024))), NO_CAP, 'an unknown queue answers the same');
  assert.equal(await refused(c.deposit(queue, write, env(1000))), `${MailboxErrorCode.BAD_SIZE}/false`, 'not a padding bucket');
  assert.equal(node.status().provider?.held, 0);

  await c.deposit(queue, write, env(4096)); // the whole quota
  assert.equal(await refused(c.deposit(queue, write, env(1024))), `${MailboxErrorCode.OVER_QUOTA}/true`, 'over quota (retryable: the owner may fetch)');
  assert.deepEqual(node.status().provider, { users: 1, queues: 1, held: 1, heldBytes: 4096 });
  assert.equal((await c.fetch(queue, read)).length, 1, 'the connection still serves after the refusals');
  await c.close();

  // An envelope longer than any envelope is refused from its length prefix, before it is read; the
  // frame cannot be answered by id, so ERROR (id 0) and the connection closes.
  const raw: MessageChannel = await loopbackNetwork(loopback).dial(provider.onion, { signal: AbortSignal.timeout(20_000), timeoutMs: 20_000, limits: {}, path: MAILBOX_PATH });
  const answer = new Promise<Uint8Array>((r) => raw.once('message', r));
  const closed = new Promise<void>((r) => raw.once('close', () => r()));
  const frame = Buffer.alloc(6 + 16 + 32 + 4);
  frame.writeUInt8(1, 0);
  frame.writeUInt8(0x04, 1); // DEPOSIT
  frame.writeUInt32BE(7, 2);
  write.copy(frame, 6 + 16);
  randomBytes(16).copy(frame, 6);
  frame.writeUInt32BE(DEFAULT_LIMITS.maxEnvelope + 1, 6 + 16 + 32);
  raw.send(frame);
  const a = decodeMailboxAnswer(await answer, DEFAULT_LIMITS.maxEnvelope);
  assert.equal(a.type, 'ERROR');
  assert.equal(a.type === 'ERROR' && a.code, MailboxErrorCode.BAD_SIZE);
  await closed;
  assert.equal(node.status().provider?.held, 1);
});
