/**
 * The mailbox protocol: frame codecs (round trips, every truncation refused, limits checked from
 * length prefixes), and a client against the service over the in-memory channel pair with a real
 * ProviderStore file: subscribe with signed terms, queues, deposit receipts verified, fetch/ack,
 * refusals with their codes, replayed or foreign-signed requests, rate limit, malformed frames;
 * WATCH/NOTIFY (PROTOCOL.md §14.1) with the injected clock driving the 250 ms coalescing.
 */
import { afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady, generateIdentity, type Identity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import {
  MailboxClient, MailboxErrorCode, MailboxService, ProviderError, ProviderStore, decodeMailboxAnswer, decodeMailboxFrame, decodeMailboxRequest, encodeMailboxFrame,
  verifyDepositReceipt, type MailboxFrame, type MailboxRequest,
} from '../../src/provider/index.js';
import { createMemoryPair, type MessageChannel } from '../../src/transport/index.js';

const MAX = 262_144;
const SIZES = new Set([1024, 4096, 16384, 65536, 262144]);
let provider: Identity;
let alice: Identity;
let mallory: Identity;
let dir: string;
let clock: ManualClock;
let store: ProviderStore;
let service: MailboxService;
let client: MailboxClient;
let channels: MessageChannel[];

const q = (n: number) => new Uint8Array(16).fill(n);
const cap = (n: number) => new Uint8Array(32).fill(n);
const env = (fill: number, size = 1024) => new Uint8Array(size).fill(fill);

before(async () => {
  await cryptoReady();
  provider = generateIdentity();
  alice = generateIdentity();
  mallory = generateIdentity();
});

function connect(o: { paidUntil?: (tag: Uint8Array) => Promise<number>; requestsPerSecond?: number; requestBurst?: number } = {}): void {
  service = new MailboxService({
    identity: provider, store, clock, logger: silentLogger(),
    limits: { maxEnvelope: MAX, ...(o.requestsPerSecond ? { requestsPerSecond: o.requestsPerSecond, requestBurst: o.requestBurst ?? 1 } : {}) },
    ...(o.paidUntil ? { paidUntil: o.paidUntil } : {}),
  });
  const [a, b] = createMemoryPair({ clock });
  channels = [a, b];
  service.serve(b);
  client = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionpost-mailbox-'));
  clock = new ManualClock(Date.UTC(2026, 10, 29));
  store = new ProviderStore({ path: join(dir, 'provider.db'), logger: silentLogger(), isEnvelopeSize: (n) => SIZES.has(n) });
});
afterEach(() => {
  service?.close();
  for (const c of channels ?? []) c.destroy();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});
async function remoteCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ProviderError, String(err));
    return err.code === 'REMOTE' ? `REMOTE:${Object.entries(MailboxErrorCode).find(([, v]) => v === err.remoteCode)?.[0]}` : err.code;
  }
  return 'ok';
}

test('codec: every frame type round-trips; every proper prefix is refused; lengths are checked before reading', () => {
  const frames: MailboxFrame[] = [
    { type: 'SUBSCRIBE', id: 1, identity: cap(1), time: 5, tag: cap(2), sig: new Uint8Array(64).fill(3) },
    { type: 'SUBSCRIBE', id: 2, identity: cap(1), time: 5, tag: null, sig: new Uint8Array(64).fill(3) },
    { type: 'CREATE_QUEUE', id: 3, identity: cap(1), time: 6, queue: q(1), writeHash: null, readHash: cap(4), sig: new Uint8Array(64) },
    { type: 'REMOVE_QUEUE', id: 4, identity: cap(1), time: 6, queue: q(1), sig: new Uint8Array(64) },
    { type: 'DEPOSIT', id: 5, queue: q(2), writeCap: cap(5), envelope: env(7) },
    { type: 'FETCH', id: 6, queue: q(2), readCap: cap(6), afterSeq: 9, limit: 64 },
    { type: 'ACK', id: 7, queue: q(2), readCap: cap(6), seqs: [1, 2, 2 ** 40] },
    { type: 'TERMS', id: 8, retentionMs: 1, quotaBytes: 2, time: 3, sig: new Uint8Array(64) },
    { type: 'OK', id: 9 },
    { type: 'DEPOSITED', id: 10, seq: 1, digest: cap(8), depositedAt: 2, expiresAt: 3, sig: new Uint8Array(64) },
    { type: 'HELD', id: 11, items: [{ seq: 1, depositedAt: 2, envelope: env(1) }, { seq: 2, depositedAt: 3, envelope: env(2, 4096) }] },
    { type: 'ACKED', id: 12, count: 3 },
    { type: 'ERROR', id: 13, code: MailboxErrorCode.OVER_QUOTA, retryable: true, reason: 'full' },
    { type: 'ACCOUNT', id: 14, identity: cap(1), time: 7, sig: new Uint8Array(64).fill(4) },
    { type: 'ACCOUNT_STATUS', id: 15, paidUntil: 2 ** 45, graceMs: 3, heldCount: 0xffff_ffff, heldBytes: 5, quotaBytes: 6, time: 8, sig: new Uint8Array(64).fill(5) },
    { type: 'WATCH', id: 16, queue: q(3), readCap: cap(9) },
    { type: 'NOTIFY', id: 16, queue: q(3) },
  ];
  for (const f of frames) {
    const bytes = encodeMailboxFrame(f, MAX);
    assert.deepEqual(decodeMailboxFrame(bytes, MAX), f);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeMailboxFrame(bytes.subarray(0, n), MAX), (e: unknown) => e instanceof ProviderError && e.code === 'MALFORMED', `${f.type} cut at ${n}`);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => decodeMailboxFrame(longer, MAX), /trailing/);
  }
  const dep = encodeMailboxFrame({ type: 'DEPOSIT', id: 1, queue: q(1), writeCap: null, envelope: env(1) }, MAX);
  assert.throws(() => decodeMailboxFrame(dep, 1000), (e: unknown) => e instanceof ProviderError && e.code === 'BAD_SIZE');
  const bad = Uint8Array.from(dep);
  bad[0] = 2;
  assert.throws(() => decodeMailboxFrame(bad, MAX), /version/);
  bad[0] = 1;
  bad[1] = 0x40;
  assert.throws(() => decodeMailboxFrame(bad, MAX), /unknown type/);
  const fetch0 = encodeMailboxFrame({ type: 'FETCH', id: 1, queue: q(1), readCap: cap(1), afterSeq: 0, limit: 0 }, MAX);
  assert.throws(() => decodeMailboxFrame(fetch0, MAX), /limit/);
});

test('a user subscribes (signed terms), creates a queue, a contact deposits (signed receipt), the user fetches and acks', async () => {
  connect();
  const terms = await client.subscribe(alice, null);
  assert.equal(terms.retentionMs, 14 * 24 * 3600 * 1000);
  await client.createQueue(alice, q(1), { write: cap(0xa1), read: cap(0xb1) });
  const r1 = await client.deposit(q(1), cap(0xa1), env(1));
  const r2 = await client.deposit(q(1), cap(0xa1), env(2, 4096));
  assert.deepEqual([r1.seq, r2.seq], [1, 2]);
  assert.ok(verifyDepositReceipt(provider.identityKey, r1, env(1)));
  assert.ok(!verifyDepositReceipt(provider.identityKey, r1, env(9)), 'a receipt is for exactly one envelope');
  assert.ok(!verifyDepositReceipt(alice.identityKey, r1, env(1)), 'and from exactly one provider');
  const held = await client.fetch(q(1), cap(0xb1));
  assert.deepEqual(held.map((h) => [h.seq, h.envelope.length]), [[1, 1024], [2, 4096]]);
  assert.equal(await client.ack(q(1), cap(0xb1), [1, 2]), 2);
  assert.deepEqual(await client.fetch(q(1), cap(0xb1)), []);
  await client.removeQueue(alice, q(1));
  assert.equal(await remoteCode(client.deposit(q(1), cap(0xa1), env(3))), 'REMOTE:NO_CAPABILITY');
});

test('refusals carry their codes and store nothing; the connection stays up', async () => {
  connect();
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: cap(0xa1), read: cap(0xb1) });
  assert.equal(await remoteCode(client.deposit(q(1), null, env(1))), 'REMOTE:NO_CAPABILITY');
  assert.equal(await remoteCode(client.deposit(q(1), cap(0xb1), env(1))), 'REMOTE:NO_CAPABILITY');
  assert.equal(await remoteCode(client.deposit(q(1), cap(0xa1), env(1, 1000))), 'REMOTE:BAD_SIZE');
  assert.equal(await remoteCode(client.fetch(q(1), cap(0xa1))), 'REMOTE:NO_CAPABILITY');
  assert.equal(await remoteCode(client.createQueue(mallory, q(2), { write: null, read: cap(1) })), 'REMOTE:NOT_SUBSCRIBED');
  assert.equal(await remoteCode(client.createQueue(alice, q(1), { write: null, read: cap(1) })), 'REMOTE:QUEUE_EXISTS');
  assert.equal(store.stats().held, 0);
  // A request signed at another time is stale (replays of an old request die here).
  const stale = new MailboxClient({ channel: channels[0]!, providerKey: provider.identityKey, clock: new ManualClock(clock.now() - 3_600_000), maxEnvelope: MAX });
  assert.equal(await remoteCode(stale.subscribe(alice, null)), 'REMOTE:STALE');
  // Terms signed by someone else than the provider we meant are refused by the client.
  const wrongKey = new MailboxClient({ channel: channels[0]!, providerKey: mallory.identityKey, clock, maxEnvelope: MAX });
  assert.equal(await remoteCode(wrongKey.subscribe(alice, null)), 'REMOTE:BAD_SIGNATURE', 'the subscribe names another provider: refused');
  assert.ok(await client.fetch(q(1), cap(0xb1)), 'still serving');
});

test('a priced provider serves only a paid (or graced) tag', async () => {
  const paid = new Map<string, number>();
  const tag = cap(0x77);
  connect({ paidUntil: async (t) => paid.get(Buffer.from(t).toString('hex')) ?? 0 });
  assert.equal(await remoteCode(client.subscribe(alice, null)), 'REMOTE:NOT_PAID');
  assert.equal(await remoteCode(client.subscribe(alice, tag)), 'REMOTE:NOT_PAID');
  paid.set(Buffer.from(tag).toString('hex'), clock.now() - 24 * 3600 * 1000);
  await client.subscribe(alice, tag); // lapsed a day ago: inside the 3-day grace
  assert.deepEqual(store.account(alice.identityKey)!.tag, tag);
  paid.set(Buffer.from(tag).toString('hex'), clock.now() - 4 * 24 * 3600 * 1000);
  assert.equal(await remoteCode(client.subscribe(alice, tag)), 'REMOTE:NOT_PAID');
});

test('ACCOUNT: a free provider answers paid-until 0 with what it holds; a priced one its paid-until, also once lapsed past the grace, while FETCH is NOT_PAID', async () => {
  const DAY = 24 * 3600 * 1000;
  connect();
  assert.equal(await remoteCode(client.account(alice)), 'REMOTE:NOT_SUBSCRIBED');
  await client.subscribe(alice, null);
  assert.deepEqual({ ...(await client.account(alice)), sig: null }, {
    paidUntil: 0, graceMs: 0, heldCount: 0, heldBytes: 0, quotaBytes: 256 * 1024 * 1024, time: clock.now(), sig: null,
  });
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  await client.deposit(q(1), null, env(1));
  await client.deposit(q(1), null, env(2, 4096));
  const s = await client.account(alice);
  assert.deepEqual([s.heldCount, s.heldBytes], [2, 1024 + 4096]);
  // Only alice may ask, only now, and only this provider's signature is taken.
  const stale = new MailboxClient({ channel: channels[0]!, providerKey: provider.identityKey, clock: new ManualClock(clock.now() - 3_600_000), maxEnvelope: MAX });
  assert.equal(await remoteCode(stale.account(alice)), 'REMOTE:STALE');
  const wrongKey = new MailboxClient({ channel: channels[0]!, providerKey: mallory.identityKey, clock, maxEnvelope: MAX });
  assert.equal(await remoteCode(wrongKey.account(alice)), 'REMOTE:BAD_SIGNATURE', 'the request names another provider');
  service.close();

  // Priced: paid until in 5 days → that date and the grace; the chain is read again only past it.
  const tag = cap(0x77);
  let paidUntil = clock.now() + 5 * DAY;
  let reads = 0;
  connect({ paidUntil: async () => (reads++, paidUntil) });
  await client.subscribe(alice, tag);
  reads = 0;
  assert.deepEqual([(await client.account(alice)).paidUntil, (await client.account(alice)).graceMs], [paidUntil, 3 * DAY]);
  assert.equal(reads, 0, 'the remembered date covers now');
  // A day past the grace: FETCH is refused, ACCOUNT still tells alice when it lapsed.
  clock.advance(9 * DAY);
  assert.equal(await remoteCode(client.fetch(q(1), cap(0xb1))), 'REMOTE:NOT_PAID');
  const lapsed = await client.account(alice);
  assert.deepEqual([lapsed.paidUntil, lapsed.heldCount], [paidUntil, 2]);
  // Paid again: the next ACCOUNT past the recheck interval reads the new date.
  paidUntil = clock.now() + 30 * DAY;
  clock.advance(10 * 60_000);
  assert.equal((await client.account(alice)).paidUntil, paidUntil);
  assert.equal((await client.fetch(q(1), cap(0xb1))).length, 2);
  // A priced provider never says 0 (free): an account with no payment found is paid until 1.
  await client.subscribe(mallory, tag);
  paidUntil = 0;
  store.setPaidUntil(mallory.identityKey, 0);
  assert.equal((await client.account(mallory)).paidUntil, 1);
});

test('rate limit per connection; a malformed frame closes the connection with an ERROR first (and is reported as misbehaviour)', async () => {
  connect({ requestsPerSecond: 1, requestBurst: 2 });
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: null, read: cap(1) });
  assert.equal(await remoteCode(client.fetch(q(1), cap(1))), 'REMOTE:RATE_LIMITED');
  const got: MailboxFrame[] = [];
  const [a] = channels;
  const raw = createMemoryPair({ clock });
  let misbehaved = 0;
  service.serve(raw[1], { onMisbehaved: () => misbehaved++ });
  raw[0].on('message', (b) => got.push(decodeMailboxFrame(b, MAX)));
  const closed = new Promise((r) => raw[0].on('close', r));
  raw[0].send(new Uint8Array([1, 0x04, 0, 0, 0, 1, 9]));
  await closed;
  assert.equal(got[0]?.type, 'ERROR');
  assert.equal((got[0] as { code: number }).code, MailboxErrorCode.MALFORMED);
  assert.equal(misbehaved, 1, 'the node refuses the circuit for a while');
  assert.equal(a!.state, 'open', 'other connections are untouched');
});

test('an answer sent to a provider, and a request sent to a client, are unknown types there: MALFORMED, connection closed', async () => {
  connect();
  const got: MailboxFrame[] = [];
  const toProvider = createMemoryPair({ clock });
  channels.push(...toProvider);
  service.serve(toProvider[1]);
  toProvider[0].on('message', (b) => got.push(decodeMailboxFrame(b, MAX)));
  const providerClosed = new Promise((r) => toProvider[0].on('close', r));
  toProvider[0].send(encodeMailboxFrame({ type: 'OK', id: 7 }, MAX));
  await providerClosed;
  assert.deepEqual(got.map((f) => [f.type, (f as { code?: number }).code]), [['ERROR', MailboxErrorCode.MALFORMED]]);

  // A "provider" that sends a request frame, under an id the client is not waiting for: the client
  // must not skip it as a late answer, but fail and close like for any frame that does not decode.
  const [a, b] = createMemoryPair({ clock });
  channels.push(a, b);
  const c = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX });
  const pending = remoteCode(c.subscribe(alice, null));
  const clientClosed = new Promise((r) => b.on('close', r));
  b.send(encodeMailboxFrame({ type: 'FETCH', id: 999, queue: q(1), readCap: cap(1), afterSeq: 0, limit: 1 }, MAX));
  await clientClosed;
  assert.equal(await pending, 'MALFORMED');
});

/**
 * A connection to the service that speaks raw frames, so a test sees each answer's request id and
 * every unasked NOTIFY exactly as sent.
 */
function rawConnection() {
  const [a, b] = createMemoryPair({ clock });
  channels.push(a, b);
  service.serve(b);
  const got: MailboxFrame[] = [];
  const waiting = new Map<number, (f: MailboxFrame) => void>();
  a.on('message', (bytes) => {
    const f = decodeMailboxAnswer(bytes, MAX);
    got.push(f);
    if (f.type !== 'NOTIFY') waiting.get(f.id)?.(f);
  });
  let nextId = 5000;
  const request = (req: MailboxRequest & { id: number }) => new Promise<MailboxFrame>((resolve) => {
    waiting.set(req.id, (f) => {
      waiting.delete(req.id);
      resolve(f);
    });
    a.send(encodeMailboxFrame(req, MAX));
  });
  return {
    channel: a,
    got,
    request,
    notifies: () => got.filter((f): f is Extract<MailboxFrame, { type: 'NOTIFY' }> => f.type === 'NOTIFY'),
    /**
     * One round trip. The provider sends on a connection in order and the channel is FIFO, so every
     * NOTIFY it sent before it answers this is in `got` once this resolves.
     */
    sync: () => request({ type: 'FETCH', id: nextId++, queue: q(0xee), readCap: cap(0xee), afterSeq: 0, limit: 1 }),
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** alice's public queue q(1) (read capability 0xb1…), watched on a raw connection under request id 3. */
async function watchingQ1(): Promise<ReturnType<typeof rawConnection>> {
  connect();
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  const w = rawConnection();
  assert.equal((await w.request({ type: 'WATCH', id: 3, queue: q(1), readCap: cap(0xb1) })).type, 'OK');
  return w;
}

test('WATCH: refused without the queue\'s read capability (NO_CAPABILITY, like a FETCH) and then notifies nothing; a lapsed priced subscription is NOT_PAID', async () => {
  connect();
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  const w = rawConnection();
  for (const [i, readCap] of [cap(0xb2), cap(0), new Uint8Array(32).fill(0xb1).fill(0xb2, 31)].entries()) {
    const a = await w.request({ type: 'WATCH', id: 10 + i, queue: q(1), readCap });
    assert.deepEqual([a.type, (a as { code?: number }).code, a.id], ['ERROR', MailboxErrorCode.NO_CAPABILITY, 10 + i], `read capability ${i}`);
  }
  const unknown = await w.request({ type: 'WATCH', id: 13, queue: q(9), readCap: cap(0xb1) });
  assert.deepEqual([unknown.type, (unknown as { code?: number }).code], ['ERROR', MailboxErrorCode.NO_CAPABILITY], 'no such queue: told like a wrong capability');
  assert.equal(await remoteCode(client.watch(q(1), cap(0xb2))), 'REMOTE:NO_CAPABILITY');
  await client.deposit(q(1), null, env(1));
  await w.sync();
  assert.deepEqual(w.notifies(), [], 'a refused WATCH watches nothing');
  assert.equal(w.channel.state, 'open', 'a refusal keeps the connection');
  service.close();

  const DAY = 24 * 3600 * 1000;
  const paidUntil = clock.now() + DAY;
  connect({ paidUntil: async () => paidUntil });
  await client.subscribe(alice, cap(0x77));
  await client.createQueue(alice, q(2), { write: null, read: cap(0xb3) });
  await client.watch(q(2), cap(0xb3));
  clock.advance(5 * DAY); // a day past the paid-until and its 3-day grace
  assert.equal(await remoteCode(client.watch(q(2), cap(0xb3))), 'REMOTE:NOT_PAID');
  assert.equal(await remoteCode(client.watch(q(2), cap(0xb4))), 'REMOTE:NO_CAPABILITY', 'the capability is checked first');
});

test('WATCH → OK; a committed deposit to that queue brings a NOTIFY with the WATCH\'s request id and the queue; a deposit elsewhere brings none', async () => {
  connect();
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  await client.createQueue(alice, q(2), { write: cap(0xa2), read: cap(0xb2) });
  const w = rawConnection();
  const ok = await w.request({ type: 'WATCH', id: 0xdead_beef, queue: q(1), readCap: cap(0xb1) });
  assert.deepEqual(ok, { type: 'OK', id: 0xdead_beef });
  const other = rawConnection();
  assert.equal((await other.request({ type: 'WATCH', id: 7, queue: q(2), readCap: cap(0xb2) })).type, 'OK');

  // Another queue, and a deposit to ours that does not commit: nothing for w.
  await client.deposit(q(2), cap(0xa2), env(2));
  assert.equal(await remoteCode(client.deposit(q(1), null, env(3, 1000))), 'REMOTE:BAD_SIZE');
  await w.sync();
  await other.sync();
  assert.deepEqual(w.notifies(), [], 'no NOTIFY for another queue or a refused deposit');
  assert.deepEqual(other.notifies().map((n) => [n.id, hex(n.queue)]), [[7, hex(q(2))]], 'the other queue\'s watcher was told');

  await client.deposit(q(1), null, env(1));
  await w.sync();
  assert.deepEqual(w.notifies(), [{ type: 'NOTIFY', id: 0xdead_beef, queue: q(1) }]);
  await other.sync();
  assert.equal(other.notifies().length, 1, 'a deposit to q(1) tells q(2)\'s watcher nothing');
  // The NOTIFY says "fetch now"; the fetch finds the envelope.
  assert.equal((await client.fetch(q(1), cap(0xb1))).length, 1);
});

test('NOTIFYs of one watch are 250 ms apart: deposits within the gap bring one at once and one more after it (ManualClock), not one each', async () => {
  const w = await watchingQ1();

  await client.deposit(q(1), null, env(1));
  await w.sync();
  assert.equal(w.notifies().length, 1, 'the first deposit is told at once');
  clock.advance(100);
  await client.deposit(q(1), null, env(2));
  clock.advance(50);
  await client.deposit(q(1), null, env(3));
  await w.sync();
  assert.equal(w.notifies().length, 1, 'two more deposits within 250 ms: not told yet, and not one NOTIFY each');
  clock.advance(99); // 249 ms after the first NOTIFY
  await w.sync();
  assert.equal(w.notifies().length, 1);
  clock.advance(1); // 250 ms
  await w.sync();
  assert.equal(w.notifies().length, 2, 'one NOTIFY for both, once the gap has passed');
  clock.advance(10_000);
  await w.sync();
  assert.equal(w.notifies().length, 2, 'nothing more was pending');
  assert.ok(w.notifies().every((n) => n.id === 3 && hex(n.queue) === hex(q(1))));

  // Long after the last one, a deposit is told at once again.
  await client.deposit(q(1), null, env(4));
  await w.sync();
  assert.equal(w.notifies().length, 3);
});

test('WATCH: at most 16 per connection, the 17th is BUSY and not retryable; another connection may still watch', async () => {
  connect();
  await client.subscribe(alice, null);
  for (let i = 1; i <= 17; i++) await client.createQueue(alice, q(i), { write: null, read: cap(0x80 + i) });
  for (let i = 1; i <= 16; i++) await client.watch(q(i), cap(0x80 + i));
  let refusal: unknown;
  try {
    await client.watch(q(17), cap(0x80 + 17));
  } catch (err) {
    refusal = err;
  }
  assert.ok(refusal instanceof ProviderError, String(refusal));
  assert.deepEqual([refusal.code, refusal.remoteCode, refusal.retryable], ['REMOTE', MailboxErrorCode.BUSY, false]);
  assert.equal(channels[0]!.state, 'open', 'the connection stays up');

  const w = rawConnection();
  assert.equal((await w.request({ type: 'WATCH', id: 17, queue: q(17), readCap: cap(0x80 + 17) })).type, 'OK', 'the limit is per connection');
  await client.deposit(q(17), null, env(1));
  await w.sync();
  assert.equal(w.notifies().length, 1);
});

test('after the watching connection closes, deposits notify nobody, its pending NOTIFY timer is cleared, and nothing throws', async () => {
  const w = await watchingQ1();
  await client.deposit(q(1), null, env(1));
  await client.deposit(q(1), null, env(2)); // within the gap: a NOTIFY is scheduled
  await w.sync();
  assert.equal(w.notifies().length, 1);
  const timersWithNotify = clock.pending;
  const closed = new Promise((r) => w.channel.on('close', r));
  void w.channel.close();
  await closed;
  assert.equal(clock.pending, timersWithNotify - 1, 'the scheduled NOTIFY went with the connection');
  const seen = w.got.length;
  await client.deposit(q(1), null, env(3));
  clock.advance(1000);
  await client.deposit(q(1), null, env(4));
  assert.equal((await client.fetch(q(1), cap(0xb1))).length, 4, 'deposits are served as before');
  assert.equal(w.got.length, seen, 'nothing came on the closed connection');
});

test('client.watch(): onNotify is called with the queue after a deposit there, and only for the watched queue', async () => {
  connect();
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  await client.createQueue(alice, q(2), { write: null, read: cap(0xb2) });
  const [a, b] = createMemoryPair({ clock });
  channels.push(a, b);
  service.serve(b);
  const told: string[] = [];
  const owner = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX, onNotify: (queue) => told.push(hex(queue)) });
  await owner.watch(q(1), cap(0xb1));
  await client.deposit(q(2), null, env(2));
  await client.deposit(q(1), null, env(1));
  await owner.fetch(q(1), cap(0xb1)); // a round trip: the NOTIFY came before its answer
  assert.deepEqual(told, [hex(q(1))]);
  await owner.close();
});

test('WATCH of a queue the connection watches already is one watch (one NOTIFY, one place); REMOVE_QUEUE ends its watches', async () => {
  const w = await watchingQ1();
  assert.equal((await w.request({ type: 'WATCH', id: 4, queue: q(1), readCap: cap(0xb1) })).type, 'OK');
  await client.deposit(q(1), null, env(1));
  await w.sync();
  assert.deepEqual(w.notifies().map((n) => n.id), [3], 'told once, under the first WATCH');
  await client.removeQueue(alice, q(1));
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  clock.advance(1_000);
  await client.deposit(q(1), null, env(2));
  await w.sync();
  assert.equal(w.notifies().length, 1, 'a queue removed and created again starts unwatched');
  assert.equal((await w.request({ type: 'WATCH', id: 5, queue: q(1), readCap: cap(0xb1) })).type, 'OK');
  await client.deposit(q(1), null, env(3));
  await w.sync();
  assert.deepEqual(w.notifies().map((n) => n.id), [3, 5]);
});

test('client: a NOTIFY for no watch of ours (another id or queue) is ignored', async () => {
  connect();
  const [a, b] = createMemoryPair({ clock });
  channels.push(a, b);
  const told: string[] = [];
  const owner = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX, onNotify: (queue) => told.push(hex(queue)) });
  b.on('message', (bytes) => {
    const f = decodeMailboxRequest(bytes, MAX);
    if (f.type === 'WATCH') b.send(encodeMailboxFrame({ type: 'OK', id: f.id }, MAX));
  });
  await owner.watch(q(1), cap(0xb1));
  const watchId = 1;
  b.send(encodeMailboxFrame({ type: 'NOTIFY', id: 99, queue: q(1) }, MAX));
  b.send(encodeMailboxFrame({ type: 'NOTIFY', id: watchId, queue: q(2) }, MAX));
  b.send(encodeMailboxFrame({ type: 'NOTIFY', id: watchId, queue: q(1) }, MAX));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(told, [hex(q(1))]);
  await owner.close();
});
