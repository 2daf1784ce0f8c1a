/**
 * The priced provider's payment check (src/provider/payments.ts) against a real ProviderStore file,
 * with a hand-driven clock and a payment source the test controls (the chain is exercised in
 * test/component/provider-paid.test.ts): the remembered paid-until date spares chain reads; past it
 * the chain is read again at most once per recheck interval per subscriber; past paid-until + grace
 * NOT_PAID; a chain that cannot be read never takes service from a paid user before the remembered
 * date + grace, answers UNAVAILABLE (retryable) after it, and is logged once, not per request.
 */
import { afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady } from '../../src/crypto/index.js';
import { createLogger } from '../../src/log.js';
import { PaymentGate, ProviderError, ProviderStore, capabilityHash } from '../../src/provider/index.js';

const DAY = 24 * 3600 * 1000;
const GRACE = 3 * DAY;
const RECHECK = 10 * 60_000;
const alice = new Uint8Array(32).fill(0xa1);
const tag = new Uint8Array(32).fill(0x7a);
const queue = new Uint8Array(16).fill(1);
const write = new Uint8Array(32).fill(2);

let dir: string;
let clock: ManualClock;
let store: ProviderStore;
let gate: PaymentGate;
let lines: Record<string, unknown>[];
/** The chain as the source reports it: paid-until per tag (hex), or down. */
let chain: { paid: Map<string, number>; down: boolean; priced: boolean; reads: number };
const abort = new AbortController();

before(async () => {
  await cryptoReady();
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionpost-payments-'));
  clock = new ManualClock(Date.UTC(2026, 10, 29));
  store = new ProviderStore({ path: join(dir, 'provider.db'), logger: createLogger({ level: 'silent' }), isEnvelopeSize: (n) => n === 1024 });
  lines = [];
  chain = { paid: new Map(), down: false, priced: true, reads: 0 };
  const logger = createLogger({ level: 'warn', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
  gate = new PaymentGate({
    source: {
      priced: async () => {
        if (chain.down) throw new Error('ECONNREFUSED');
        return chain.priced;
      },
      paidUntil: async (t) => {
        chain.reads++;
        if (chain.down) throw new Error('ECONNREFUSED');
        return chain.paid.get(Buffer.from(t).toString('hex')) ?? 0;
      },
    },
    store, clock, logger, graceMs: GRACE, recheckMs: RECHECK, checkTimeoutMs: 5_000, logEveryMs: 60_000, signal: abort.signal,
  });
});

afterEach(() => {
  gate.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const pay = (until: number) => chain.paid.set(Buffer.from(tag).toString('hex'), until);

/** Subscribes alice as the service does (gate, then store) and gives her a queue. */
async function subscribe(): Promise<void> {
  const until = await gate.subscribe(alice, tag, clock.now());
  store.subscribe(alice, clock.now(), tag, until);
  if (!store.queueOwner(queue, write, 'write')) store.createQueue(alice, queue, { write: capabilityHash(write), read: capabilityHash(new Uint8Array(32).fill(3)) }, clock.now());
}

async function access(): Promise<string> {
  const owner = store.queueOwner(queue, write, 'write');
  assert.ok(owner);
  try {
    await gate.access(owner, clock.now());
    return 'served';
  } catch (err) {
    assert.ok(err instanceof ProviderError, String(err));
    return `${err.code}${err.retryable ? ' (retryable)' : ''}`;
  }
}

test('the remembered date spares chain reads; past it the chain is read once per recheck interval; past the grace NOT_PAID', async () => {
  await assert.rejects(gate.subscribe(alice, tag, clock.now()), (e: unknown) => e instanceof ProviderError && e.code === 'NOT_PAID');
  const paidUntil = clock.now() + 30 * DAY;
  pay(paidUntil);
  await subscribe();
  assert.equal(store.account(alice)!.paidUntil, paidUntil, 'remembered with the account');
  const reads = chain.reads;
  for (let i = 0; i < 100; i++) assert.equal(await access(), 'served');
  clock.advance(29 * DAY);
  assert.equal(await access(), 'served');
  assert.equal(chain.reads, reads, 'no chain read while the remembered date covers now');

  // Past paid-until, inside the grace: one read, then none until the recheck interval has passed.
  clock.advance(DAY + 1);
  for (let i = 0; i < 50; i++) assert.equal(await access(), 'served');
  assert.equal(chain.reads, reads + 1);
  clock.advance(RECHECK);
  assert.equal(await access(), 'served');
  assert.equal(chain.reads, reads + 2);

  // Past the grace: refused, still without a read per request.
  clock.advance(GRACE);
  assert.equal(await access(), 'NOT_PAID');
  assert.equal(await access(), 'NOT_PAID');
  assert.equal(chain.reads, reads + 3);

  // Paid more meanwhile: the next read (after the interval) finds it and remembers it.
  pay(paidUntil + 30 * DAY);
  assert.equal(await access(), 'NOT_PAID', 'within the interval the last read stands');
  clock.advance(RECHECK);
  assert.equal(await access(), 'served');
  assert.equal(store.account(alice)!.paidUntil, paidUntil + 30 * DAY);
  const after = chain.reads;
  assert.equal(await access(), 'served');
  assert.equal(chain.reads, after);
});

test('a resubscribe after paying again is served at once (SUBSCRIBE reads the chain, not throttled)', async () => {
  pay(clock.now() + 30 * DAY);
  await subscribe();
  clock.advance(34 * DAY);
  assert.equal(await access(), 'NOT_PAID');
  await assert.rejects(gate.subscribe(alice, tag, clock.now()), (e: unknown) => e instanceof ProviderError && e.code === 'NOT_PAID');
  pay(clock.now() + 30 * DAY);
  await subscribe();
  assert.equal(await access(), 'served');
});

test('a chain that cannot be read: served until the remembered date + grace, then UNAVAILABLE (retryable); logged once', async () => {
  const paidUntil = clock.now() + 30 * DAY;
  pay(paidUntil);
  await subscribe();
  chain.down = true;
  clock.advance(30 * DAY + 1);
  for (let i = 0; i < 20; i++) {
    assert.equal(await access(), 'served');
    clock.advance(RECHECK);
  }
  assert.equal(await gate.subscribe(alice, tag, clock.now()), paidUntil, 'a resubscribe keeps the remembered date');
  clock.advance(GRACE);
  assert.equal(await access(), 'UNAVAILABLE (retryable)');
  assert.equal(await access(), 'UNAVAILABLE (retryable)', 'within the interval: the last read failed, not NOT_PAID');
  // A burst of failed reads (new subscribers while the chain is down) adds no log line.
  const before = lines.length;
  for (let i = 0; i < 100; i++) {
    await assert.rejects(gate.subscribe(new Uint8Array(32).fill(i), tag, clock.now()), (e: unknown) => e instanceof ProviderError && e.code === 'UNAVAILABLE' && e.retryable);
  }
  assert.equal(lines.length, before);
  assert.ok(lines.length <= 24, `${lines.length} lines: the first failure, then at most one summary per minute of the ${20 * 10 + 3 * 24 * 60} minutes down`);
  assert.equal(lines[0]!.msg, 'payment check: the provider directory could not be read; serving by the remembered paid-until dates');
  chain.down = false;
  clock.advance(RECHECK);
  assert.equal(await access(), 'NOT_PAID', 'the chain, back, says lapsed');
});

test('a free provider (its listing has no price) serves without a tag and reads no payment', async () => {
  chain.priced = false;
  assert.equal(await gate.subscribe(alice, null, clock.now()), undefined);
  store.subscribe(alice, clock.now(), null);
  store.createQueue(alice, queue, { write: capabilityHash(write), read: capabilityHash(new Uint8Array(32).fill(3)) }, clock.now());
  clock.advance(400 * DAY);
  assert.equal(await access(), 'served');
  assert.equal(chain.reads, 0);
  // The provider sets a price: a subscriber without a tag is no longer served.
  chain.priced = true;
  assert.equal(await access(), 'NOT_PAID');
});
