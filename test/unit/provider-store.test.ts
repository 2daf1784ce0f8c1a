/**
 * The mailbox provider's store on a real SQLite file: capabilities (unknown queue and wrong
 * capability look the same), quota, sizes, duplicates, fetch order, acknowledged envelopes gone
 * (and their bytes given back), retention, public queues, limits, and durability across reopen.
 */
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { ProviderError, ProviderStore, capabilityHash, type ProviderLimits } from '../../src/provider/index.js';

let dir: string;
const stores: ProviderStore[] = [];
const SIZES = new Set([1024, 4096]);
const T0 = Date.UTC(2026, 10, 1);
const alice = new Uint8Array(32).fill(1);
const bob = new Uint8Array(32).fill(2);
const q1 = new Uint8Array(16).fill(0x11);
const q2 = new Uint8Array(16).fill(0x22);
const w1 = new Uint8Array(32).fill(0xa1);
const r1 = new Uint8Array(32).fill(0xb1);

function open(limits: Partial<ProviderLimits> = {}): ProviderStore {
  const s = new ProviderStore({ path: join(dir, 'provider.db'), logger: silentLogger(), limits, isEnvelopeSize: (n) => SIZES.has(n) });
  stores.push(s);
  return s;
}

function env(fill: number, size = 1024): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProviderError, String(err));
    return err.code;
  }
  return 'no error';
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionpost-provider-'));
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

test('deposit needs the write capability of an existing queue; both failures look the same', () => {
  const s = open();
  s.subscribe(alice, T0);
  s.createQueue(alice, q1, { write: capabilityHash(w1), read: capabilityHash(r1) }, T0);
  assert.equal(code(() => s.deposit(q1, null, env(1), T0)), 'NO_CAPABILITY');
  assert.equal(code(() => s.deposit(q1, r1, env(1), T0)), 'NO_CAPABILITY', 'the read capability does not write');
  assert.equal(code(() => s.deposit(q2, w1, env(1), T0)), 'NO_CAPABILITY', 'an unknown queue answers the same');
  assert.equal(code(() => s.deposit(q1, w1, env(1, 1000), T0)), 'BAD_SIZE');
  const d = s.deposit(q1, w1, env(1), T0);
  assert.deepEqual([d.seq, d.duplicate, d.expiresAt], [1, false, T0 + 14 * 24 * 3600 * 1000]);
  assert.equal(s.stats().held, 1);
  assert.equal(code(() => s.fetch(q1, w1)), 'NO_CAPABILITY', 'the write capability does not read');
});

test('a repeated deposit is the first one; fetch is in order; ack deletes and gives the bytes back', () => {
  const s = open();
  s.subscribe(alice, T0);
  s.createQueue(alice, q1, { write: capabilityHash(w1), read: capabilityHash(r1) }, T0);
  s.deposit(q1, w1, env(1), T0);
  s.deposit(q1, w1, env(2, 4096), T0 + 1);
  const again = s.deposit(q1, w1, env(1), T0 + 2);
  assert.deepEqual([again.seq, again.duplicate, again.depositedAt], [1, true, T0]);
  assert.equal(s.account(alice)!.usedBytes, 1024 + 4096);
  const got = s.fetch(q1, r1);
  assert.deepEqual(got.map((g) => [g.seq, g.envelope[0], g.envelope.length]), [[1, 1, 1024], [2, 2, 4096]]);
  assert.deepEqual(s.fetch(q1, r1, { afterSeq: 1 }).map((g) => g.seq), [2]);
  assert.equal(s.ack(q1, r1, [1, 99]), 1);
  assert.equal(s.account(alice)!.usedBytes, 4096);
  assert.deepEqual(s.fetch(q1, r1).map((g) => g.seq), [2]);
  assert.equal(code(() => s.ack(q1, w1, [2])), 'NO_CAPABILITY');
  // After the ack, the same envelope is new again (the recipient has it; a late retry is its dedup's job).
  assert.equal(s.deposit(q1, w1, env(1), T0 + 3).seq, 3);
});

test('quota per user across its queues; public queues take deposits without a capability', () => {
  const s = open({ quotaBytes: 5 * 1024 });
  s.subscribe(alice, T0);
  s.createQueue(alice, q1, { write: capabilityHash(w1), read: capabilityHash(r1) }, T0);
  s.createQueue(alice, q2, { write: null, read: capabilityHash(r1) }, T0);
  s.deposit(q1, w1, env(1, 4096), T0);
  s.deposit(q2, null, env(2), T0);
  assert.equal(code(() => s.deposit(q2, null, env(3), T0)), 'OVER_QUOTA');
  assert.equal(s.stats().held, 2, 'nothing stored on refusal');
  assert.ok(s.removeQueue(alice, q1));
  assert.equal(s.account(alice)!.usedBytes, 1024, 'a removed queue gives its bytes back');
  s.deposit(q2, null, env(3), T0);
});

test('retention: envelopes past it are dropped and their bytes given back', () => {
  const s = open({ retentionMs: 1000 });
  s.subscribe(alice, T0);
  s.createQueue(alice, q1, { write: capabilityHash(w1), read: capabilityHash(r1) }, T0);
  s.deposit(q1, w1, env(1), T0);
  s.deposit(q1, w1, env(2), T0 + 600);
  assert.equal(s.expire(T0 + 999), 0);
  assert.equal(s.expire(T0 + 1000), 1);
  assert.deepEqual(s.fetch(q1, r1).map((g) => g.envelope[0]), [2]);
  assert.equal(s.account(alice)!.usedBytes, 1024);
});

test('limits: users, queues per user, queue ids; operations for an unknown user', () => {
  const s = open({ maxUsers: 1, maxQueuesPerUser: 1 });
  s.subscribe(alice, T0);
  s.subscribe(alice, T0, new Uint8Array(32).fill(7));
  assert.deepEqual(s.account(alice)!.tag, new Uint8Array(32).fill(7));
  assert.equal(code(() => s.subscribe(bob, T0)), 'TOO_MANY_USERS');
  assert.equal(code(() => s.createQueue(bob, q1, { write: null, read: capabilityHash(r1) }, T0)), 'NOT_SUBSCRIBED');
  s.createQueue(alice, q1, { write: null, read: capabilityHash(r1) }, T0);
  assert.equal(code(() => s.createQueue(alice, q2, { write: null, read: capabilityHash(r1) }, T0)), 'TOO_MANY_QUEUES');
  assert.equal(code(() => s.createQueue(alice, q1, { write: null, read: capabilityHash(r1) }, T0)), 'QUEUE_EXISTS');
});

test('what a deposit returned is there after the store is closed and reopened; the file is 0600', async () => {
  const s = open();
  s.subscribe(alice, T0);
  s.createQueue(alice, q1, { write: capabilityHash(w1), read: capabilityHash(r1) }, T0);
  for (let i = 0; i < 20; i++) s.deposit(q1, w1, env(i), T0 + i);
  s.close();
  const again = open();
  assert.equal(again.fetch(q1, r1).length, 20);
  assert.equal(again.account(alice)!.usedBytes, 20 * 1024);
  const { statSync } = await import('node:fs');
  assert.equal(statSync(join(dir, 'provider.db')).mode & 0o777, 0o600);
  assert.equal(code(() => s.fetch(q1, r1)), 'CLOSED');
});
