import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type Store, type StoredMessage } from '../../src/store/index.js';
import {
  DEFAULT_BACKOFF, DEFAULT_TTL_MS, createOutbox, retryDelay, type Deliver, type DeliveryOutcome, type Outbox, type OutboxOptions,
} from '../../src/outbox/index.js';

const PEER_A = 'aa'.repeat(32);
const PEER_B = 'bb'.repeat(32);
const PEER_C = 'cc'.repeat(32);
const RECEIPT = new Uint8Array(64).fill(7);

/** Lets the outbox's promise continuations (outcome handling) run. */
// Two turns: deliver() settles in the first, the outbox records outcomes (group commit) in the next.
const flush = () => new Promise<void>((r) => setImmediate(() => setImmediate(r)));

interface Harness {
  dir: string;
  path: string;
  clock: ManualClock;
  store: Store;
  outboxes: Outbox[];
  outbox(deliver: Deliver, extra?: Partial<OutboxOptions>): Outbox;
  queue(peer: string, over?: { expiresAt?: number }): StoredMessage;
  cleanup(): Promise<void>;
}

function harness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'onionpost-outbox-'));
  const path = join(dir, 'node.db');
  const clock = new ManualClock();
  const h: Harness = {
    dir,
    path,
    clock,
    store: openStore({ path, logger: silentLogger(), clock }),
    outboxes: [],
    outbox(deliver, extra = {}) {
      const o = createOutbox({ store: h.store, clock, deliver, logger: silentLogger(), random: () => 0.5, ...extra });
      h.outboxes.push(o);
      return o;
    },
    queue(peer, over = {}) {
      const id = randomBytes(16).toString('hex');
      return h.store.insertOutgoing({
        id, kind: 'mail', peerIdentity: peer, body: 'hello', createdAt: clock.now(),
        expiresAt: over.expiresAt ?? clock.now() + DEFAULT_TTL_MS,
        envelope: randomBytes(1072), envelopeHash: randomBytes(32),
      });
    },
    async cleanup() {
      await Promise.all(h.outboxes.map((o) => o.close()));
      h.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A deliver whose calls wait until the test settles them. */
function controlledDeliver() {
  const calls: { message: StoredMessage; signal: AbortSignal; settle: (o: DeliveryOutcome) => void }[] = [];
  const deliver: Deliver = (message, signal) =>
    new Promise<DeliveryOutcome>((resolve, reject) => {
      calls.push({ message, signal, settle: resolve });
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  return { calls, deliver };
}

test('policy: nominal delays are the documented numbers, jitter stays within ±20 %', () => {
  const nominal = Array.from({ length: 16 }, (_, i) => retryDelay(DEFAULT_BACKOFF, i + 1, 'soon', () => 0.5));
  const s = 1000, min = 60_000;
  assert.deepEqual(nominal, [2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 2 * min, 5 * min, 10 * min, 20 * min, 40 * min, 80 * min, 160 * min, 320 * min, 360 * min, 360 * min]);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 1, 'later', () => 0.5), 5 * min);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 3, 'later', () => 0.5), 20 * min);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 30, 'later', () => 0.5), 360 * min);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 1, 'soon', () => 0), 1600);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 1, 'soon', () => 0.999999), 2400);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 200, 'soon', () => 0.5), 360 * min);
  // BUSY is flow control: the same short pause after the first attempt or the fiftieth.
  assert.equal(retryDelay(DEFAULT_BACKOFF, 1, 'busy', () => 0.5), 500);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 50, 'busy', () => 0.5), 500);
  assert.equal(retryDelay(DEFAULT_BACKOFF, 50, 'busy', () => 0), 400);
});

test('retries follow the schedule exactly, one timer at a time, never early', async () => {
  const h = harness();
  try {
    let calls = 0;
    const outbox = h.outbox(async () => {
      calls++;
      return { kind: 'retry', code: 'UNREACHABLE' };
    });
    const m = h.queue(PEER_A);
    outbox.start();
    await flush();
    assert.equal(calls, 1);
    const expected = [2, 4, 8, 16, 32, 64, 120, 300, 600, 1200, 2400, 4800, 9600, 19200, 21600, 21600].map((x) => x * 1000);
    const seen: number[] = [];
    for (let i = 0; i < expected.length; i++) {
      const row = h.store.getMessage(m.id)!;
      assert.equal(row.state, 'queued');
      assert.equal(row.lastErrorCode, 'UNREACHABLE');
      assert.equal(h.clock.pending, 1, 'exactly one timer armed');
      const delay = row.nextAttemptAt! - h.clock.now();
      seen.push(delay);
      h.clock.advance(delay - 1);
      await flush();
      assert.equal(calls, i + 1, 'no attempt before next_attempt_at');
      h.clock.advance(1);
      await flush();
      assert.equal(calls, i + 2);
    }
    assert.deepEqual(seen, expected);
    assert.equal(h.store.getMessage(m.id)!.attempts, expected.length + 1);
    const attempts = h.store.listAttempts(m.id);
    assert.equal(attempts.length, expected.length + 1);
    assert.ok(attempts.every((a) => a.outcome === 'retry' && a.errorCode === 'UNREACHABLE'));
  } finally {
    await h.cleanup();
  }
});

test("'later' skips to the slow phase; a throwing deliver is a retry with code UNEXPECTED", async () => {
  const h = harness();
  try {
    const outcomes: (() => Promise<DeliveryOutcome>)[] = [
      async () => ({ kind: 'retry', code: 'STORAGE_FULL', when: 'later' }),
      async () => ({ kind: 'retry', code: 'STORAGE_FULL', when: 'later' }),
      async () => {
        throw new Error('boom');
      },
      async () => ({ kind: 'delivered', receipt: RECEIPT }),
    ];
    let i = 0;
    const outbox = h.outbox(() => outcomes[i++]!());
    const m = h.queue(PEER_A);
    outbox.start();
    await flush();
    const t0 = h.clock.now();
    assert.equal(h.store.getMessage(m.id)!.nextAttemptAt, t0 + 5 * 60_000);
    h.clock.advance(5 * 60_000);
    await flush();
    assert.equal(h.store.getMessage(m.id)!.nextAttemptAt, h.clock.now() + 10 * 60_000);
    h.clock.advance(10 * 60_000);
    await flush();
    const row = h.store.getMessage(m.id)!;
    assert.equal(row.lastErrorCode, 'UNEXPECTED');
    assert.equal(row.nextAttemptAt, h.clock.now() + 8_000, 'third attempt, soon: fast phase');
    h.clock.advance(8_000);
    await flush();
    const done = h.store.getMessage(m.id)!;
    assert.equal(done.state, 'delivered');
    assert.deepEqual(done.receipt, RECEIPT);
    assert.equal(done.deliveredAt, h.clock.now());
    assert.equal(h.clock.pending, 0, 'nothing left to wait for');
    assert.deepEqual(h.store.listEvents(m.id).map((e) => e.state), ['queued', 'sending', 'queued', 'sending', 'queued', 'sending', 'queued', 'sending', 'delivered']);
  } finally {
    await h.cleanup();
  }
});

test('a message past its TTL becomes expired at expires_at, with an event, and is never tried again', async () => {
  const h = harness();
  try {
    const t0 = h.clock.now();
    let lastCall = 0;
    const outbox = h.outbox(async () => {
      lastCall = h.clock.now();
      return { kind: 'retry', code: 'UNREACHABLE' };
    });
    const m = h.queue(PEER_A);
    assert.equal(m.expiresAt, t0 + DEFAULT_TTL_MS);
    outbox.start();
    for (let i = 0; i < 400 && h.store.getMessage(m.id)!.state !== 'expired'; i++) {
      h.clock.advance(60 * 60_000);
      await flush();
    }
    const row = h.store.getMessage(m.id)!;
    assert.equal(row.state, 'expired');
    assert.ok(lastCall < row.expiresAt);
    const ev = h.store.listEvents(m.id).at(-1)!;
    assert.equal(ev.state, 'expired');
    assert.equal(ev.at, t0 + DEFAULT_TTL_MS);
    assert.equal(h.store.counts().expired, 1);
    assert.equal(h.clock.pending, 0);
  } finally {
    await h.cleanup();
  }
});

test('a held message also expires at its TTL', async () => {
  const h = harness();
  try {
    const outbox = h.outbox(async () => ({ kind: 'held', code: 'KEY_CHANGED', reason: 'new key not approved' }));
    const m = h.queue(PEER_A, { expiresAt: h.clock.now() + 60_000 });
    outbox.start();
    await flush();
    assert.equal(h.store.getMessage(m.id)!.state, 'held');
    h.clock.advance(60_000);
    await flush();
    assert.equal(h.store.getMessage(m.id)!.state, 'expired');
  } finally {
    await h.cleanup();
  }
});

test('per-peer concurrency: one in flight per peer, different peers in parallel, global cap respected', async () => {
  const h = harness();
  try {
    const { calls, deliver } = controlledDeliver();
    const live = new Map<string, number>();
    let maxPerPeer = 0;
    let maxTotal = 0;
    let total = 0;
    const counting: Deliver = (m, signal) => {
      live.set(m.peerIdentity, (live.get(m.peerIdentity) ?? 0) + 1);
      total++;
      maxPerPeer = Math.max(maxPerPeer, live.get(m.peerIdentity)!);
      maxTotal = Math.max(maxTotal, total);
      return deliver(m, signal).finally(() => {
        live.set(m.peerIdentity, live.get(m.peerIdentity)! - 1);
        total--;
      });
    };
    const outbox = h.outbox(counting, { maxConcurrency: 2 });
    const a1 = h.queue(PEER_A);
    const a2 = h.queue(PEER_A);
    const b1 = h.queue(PEER_B);
    const c1 = h.queue(PEER_C);
    outbox.start();
    await flush();
    assert.deepEqual(calls.map((c) => c.message.id), [a1.id, b1.id], 'A and B in parallel, A2 waits for A1, C for a slot');
    assert.equal(h.store.getMessage(a2.id)!.state, 'queued');
    calls[0]!.settle({ kind: 'delivered', receipt: RECEIPT });
    await flush();
    assert.deepEqual(calls.map((c) => c.message.id), [a1.id, b1.id, a2.id]);
    calls[1]!.settle({ kind: 'delivered', receipt: RECEIPT });
    await flush();
    assert.deepEqual(calls.map((c) => c.message.id), [a1.id, b1.id, a2.id, c1.id]);
    calls[2]!.settle({ kind: 'delivered', receipt: RECEIPT });
    calls[3]!.settle({ kind: 'delivered', receipt: RECEIPT });
    await flush();
    assert.equal(maxPerPeer, 1);
    assert.equal(maxTotal, 2);
    assert.equal(h.store.counts().delivered, 4);
    assert.equal(outbox.inFlight, 0);
  } finally {
    await h.cleanup();
  }
});

test("after a 'retry' the peer's other messages wait for the same backoff instead of dialling again", async () => {
  const h = harness();
  try {
    const { calls, deliver } = controlledDeliver();
    const outbox = h.outbox(deliver);
    h.queue(PEER_A);
    h.queue(PEER_A);
    outbox.start();
    await flush();
    calls[0]!.settle({ kind: 'retry', code: 'UNREACHABLE' });
    await flush();
    assert.equal(calls.length, 1, 'second message to the unreachable peer not tried at once');
    h.clock.advance(2_000);
    await flush();
    assert.equal(calls.length, 2);
  } finally {
    await h.cleanup();
  }
});

test("'failed' is terminal with its reason; 'held' holds every queued message to the peer until released", async () => {
  const h = harness();
  try {
    const { calls, deliver } = controlledDeliver();
    const outbox = h.outbox(deliver);
    const f = h.queue(PEER_B);
    const a1 = h.queue(PEER_A);
    const a2 = h.queue(PEER_A);
    outbox.start();
    await flush();
    assert.equal(calls.length, 2);
    calls.find((c) => c.message.id === f.id)!.settle({ kind: 'failed', code: 'REJECTED', reason: 'recipient refused: too large' });
    calls.find((c) => c.message.id === a1.id)!.settle({ kind: 'held', code: 'KEY_CHANGED', reason: 'peer key changed' });
    await flush();
    const failed = h.store.getMessage(f.id)!;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.stateReason, 'recipient refused: too large');
    assert.equal(failed.lastErrorCode, 'REJECTED');
    for (const id of [a1.id, a2.id]) {
      const row = h.store.getMessage(id)!;
      assert.equal(row.state, 'held');
      assert.equal(row.stateReason, 'peer key changed');
    }
    h.clock.advance(24 * 60 * 60_000);
    await flush();
    assert.equal(calls.length, 2, 'nothing retried while failed/held');
    assert.equal(h.store.getMessage(f.id)!.state, 'failed');
    assert.equal(h.store.releaseHeld(PEER_A), 2);
    outbox.kick(PEER_A);
    await flush();
    assert.equal(calls.length, 3);
    calls[2]!.settle({ kind: 'delivered', receipt: RECEIPT });
    await flush();
    calls[3]!.settle({ kind: 'delivered', receipt: RECEIPT });
    await flush();
    assert.equal(h.store.counts().delivered, 2);
  } finally {
    await h.cleanup();
  }
});

test('kick() wakes early: a new message at once, a peer seen online before its backoff ends', async () => {
  const h = harness();
  try {
    const { calls, deliver } = controlledDeliver();
    const outbox = h.outbox(deliver);
    outbox.start();
    assert.equal(h.clock.pending, 0, 'idle: no timer');
    const m = h.queue(PEER_A);
    outbox.kick();
    assert.equal(calls.length, 1);
    calls[0]!.settle({ kind: 'retry', code: 'UNREACHABLE', when: 'later' });
    await flush();
    assert.equal(h.store.getMessage(m.id)!.nextAttemptAt, h.clock.now() + 5 * 60_000);
    outbox.kick(PEER_B);
    assert.equal(calls.length, 1, 'kicking another peer does not touch A');
    outbox.kick(PEER_A);
    assert.equal(calls.length, 2, 'peer seen online: tried now');
    calls[1]!.settle({ kind: 'delivered', receipt: RECEIPT });
    await flush();
    assert.equal(h.store.getMessage(m.id)!.state, 'delivered');
  } finally {
    await h.cleanup();
  }
});

test('close() aborts in-flight deliveries, leaves them queued, clears its timer; same promise', async () => {
  const h = harness();
  try {
    const { calls, deliver } = controlledDeliver();
    const outbox = h.outbox(deliver);
    const m = h.queue(PEER_A);
    h.queue(PEER_B, { expiresAt: h.clock.now() + 60 * 60_000 });
    h.store.insertOutgoing({
      id: randomBytes(16).toString('hex'), kind: 'chat', peerIdentity: PEER_C, body: 'later', createdAt: h.clock.now(),
      expiresAt: h.clock.now() + DEFAULT_TTL_MS, envelope: randomBytes(10), envelopeHash: randomBytes(32), nextAttemptAt: h.clock.now() + 1000,
    });
    outbox.start();
    assert.equal(calls.length, 2);
    assert.equal(h.clock.pending, 1);
    const p1 = outbox.close();
    assert.equal(outbox.close(), p1);
    await p1;
    assert.ok(calls.every((c) => c.signal.aborted));
    assert.equal(h.clock.pending, 0);
    const row = h.store.getMessage(m.id)!;
    assert.equal(row.state, 'queued');
    assert.equal(h.store.listAttempts(m.id)[0]!.outcome, 'aborted');
    assert.equal(h.store.counts().queued, 3);
    outbox.kick();
    h.clock.advance(10_000);
    await flush();
    assert.equal(calls.length, 2, 'a closed outbox does nothing');
  } finally {
    await h.cleanup();
  }
});

test('restart mid-send: the store closes while sending; after reopening the message is retried and delivered once', async () => {
  const h = harness();
  try {
    const first = controlledDeliver();
    const crashed = h.outbox(first.deliver);
    const m = h.queue(PEER_A);
    crashed.start();
    assert.equal(first.calls.length, 1);
    assert.equal(h.store.getMessage(m.id)!.state, 'sending');
    h.store.close(); // the process "dies": nothing recorded the outcome

    h.store = openStore({ path: h.path, logger: silentLogger(), clock: h.clock });
    assert.equal(h.store.getMessage(m.id)!.state, 'sending');
    let delivered = 0;
    const restarted = h.outbox(async (msg) => {
      delivered++;
      assert.equal(msg.id, m.id);
      assert.deepEqual(msg.envelope, m.envelope, 'the same sealed bytes are re-sent');
      return { kind: 'delivered', receipt: RECEIPT };
    });
    restarted.start();
    await flush();
    assert.equal(delivered, 1);
    const row = h.store.getMessage(m.id)!;
    assert.equal(row.state, 'delivered');
    assert.equal(row.attempts, 2);
    assert.deepEqual(h.store.listAttempts(m.id).map((a) => a.outcome), ['aborted', 'delivered']);
    // The first process's late outcome cannot touch the new store.
    first.calls[0]!.settle({ kind: 'retry', code: 'UNREACHABLE' });
    await flush();
    assert.equal(h.store.getMessage(m.id)!.state, 'delivered');
    h.clock.advance(60 * 60_000);
    await flush();
    assert.equal(delivered, 1);
  } finally {
    await h.cleanup();
  }
});

// ── the outbox at scale: peer-level backoff ───────────────────────────────────

/**
 * A fake network behind `deliver`, shaped like the node's: deliveries to one peer share one dial
 * while it is pending, and an open connection is reused. Counts the dials per peer.
 */
function fakeNetwork() {
  const online = new Set<string>();
  const connected = new Set<string>();
  const dialing = new Map<string, Promise<void>>();
  const dials = new Map<string, number>();
  const connect = (peer: string): Promise<void> => {
    if (connected.has(peer)) return Promise.resolve();
    let p = dialing.get(peer);
    if (!p) {
      dials.set(peer, (dials.get(peer) ?? 0) + 1);
      p = new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          dialing.delete(peer);
          if (!online.has(peer)) return reject(new Error('PEER_UNKNOWN'));
          connected.add(peer);
          resolve();
        }));
      dialing.set(peer, p);
    }
    return p;
  };
  const deliver: Deliver = async (m) => {
    try {
      await connect(m.peerIdentity);
    } catch {
      return { kind: 'retry', code: 'PEER_UNKNOWN', when: 'soon' };
    }
    return { kind: 'delivered', receipt: RECEIPT };
  };
  return { online, dials, deliver, dialsTo: (peer: string) => dials.get(peer) ?? 0 };
}

/** Queues `n` messages to `peer` in one transaction (small envelopes: the rows are what matter). */
function queueMany(h: Harness, peer: string, n: number): string[] {
  return h.store.batch(() =>
    Array.from({ length: n }, () =>
      h.store.insertOutgoing({
        id: randomBytes(16).toString('hex'), kind: 'chat', peerIdentity: peer, body: 'x', createdAt: h.clock.now(),
        expiresAt: h.clock.now() + DEFAULT_TTL_MS, envelope: randomBytes(16), envelopeHash: randomBytes(32),
      }).id));
}

/** The rows of `messages` as stored (own next_attempt_at), read through a second connection. */
function rawRows(path: string): Map<string, string> {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare('SELECT id, state, attempts, next_attempt_at, last_error_code, state_reason FROM messages').all() as { id: string }[];
    return new Map(rows.map((r) => [r.id, JSON.stringify(r)]));
  } finally {
    db.close();
  }
}

function changedRows(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([id, row]) => before.get(id) !== row).map(([id]) => id);
}

/** Lets deliveries, dials and recorded outcomes run until nothing moves (bounded). */
async function settle(h: Harness, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const before = JSON.stringify(h.store.counts());
    await flush();
    await flush();
    if (JSON.stringify(h.store.counts()) === before && h.outboxes.every((o) => o.inFlight === 0)) return;
  }
}

test('a peer that is down costs one dial per backoff step, however many messages are queued to it meanwhile', async () => {
  const h = harness();
  try {
    const net = fakeNetwork();
    // The node's concurrency: 32 per peer, 256 overall.
    const outbox = h.outbox(net.deliver, { perPeerConcurrency: 32, maxConcurrency: 256 });
    outbox.start();
    // 60 s of sending: 15 messages to each of two offline peers every second, each burst kicked
    // as the node does after a send.
    for (let s = 0; s < 60; s++) {
      queueMany(h, PEER_A, 15);
      queueMany(h, PEER_B, 15);
      outbox.kick();
      await settle(h);
      h.clock.advance(1_000);
    }
    await settle(h);
    // Backoff steps begin at 0, 2, 6, 14, 30 s (2 s doubling); the next would be at 62 s.
    assert.equal(net.dialsTo(PEER_A), 5, 'one dial per step to A');
    assert.equal(net.dialsTo(PEER_B), 5, 'one dial per step to B');
    const a = h.store.peerState(PEER_A)!;
    assert.equal(a.failures, 5);
    assert.equal(a.lastErrorCode, 'PEER_UNKNOWN');
    // Each message's attempts count only what happened to it: the first wave (≤ 32 sharing the
    // first dial) and one probe per later step; the rest were never tried.
    const rows = h.store.listMessages({ direction: 'out', peer: PEER_A, limit: 1000 });
    assert.equal(rows.length, 900);
    const tried = rows.filter((m) => m.attempts > 0);
    assert.ok(tried.length <= 32 + 4, `${tried.length} messages tried`);
    assert.equal(rows.reduce((n, m) => n + m.attempts, 0), tried.reduce((n, m) => n + h.store.listAttempts(m.id).length, 0));
    assert.ok(rows.filter((m) => m.attempts === 0).every((m) => h.store.listEvents(m.id).length === 1), 'untried messages have only their queued event');
    assert.ok(rows.every((m) => m.state === 'queued' && m.nextAttemptAt! >= a.nextAttemptAt), "every queued message shows the peer's next step");
  } finally {
    await h.cleanup();
  }
});

test('a failed attempt rewrites the message it carried and the peer row, never the rest of the queue', async () => {
  const h = harness();
  try {
    const net = fakeNetwork();
    const outbox = h.outbox(net.deliver, { perPeerConcurrency: 32, maxConcurrency: 256 });
    queueMany(h, PEER_A, 500);
    outbox.start();
    await settle(h);
    assert.equal(net.dialsTo(PEER_A), 1);
    for (let step = 2; step <= 5; step++) {
      const before = rawRows(h.path);
      const peerBefore = h.store.peerState(PEER_A)!;
      h.clock.advance(peerBefore.nextAttemptAt - h.clock.now());
      await settle(h);
      assert.equal(net.dialsTo(PEER_A), step);
      const changed = changedRows(before, rawRows(h.path));
      assert.equal(changed.length, 1, `step ${step}: rows of messages changed`);
      const probe = h.store.getMessage(changed[0]!)!;
      assert.equal(probe.state, 'queued');
      assert.equal(probe.lastErrorCode, 'PEER_UNKNOWN');
      assert.equal(h.store.peerState(PEER_A)!.failures, step);
    }
  } finally {
    await h.cleanup();
  }
});

test('when the peer comes back its queue drains: at the next step, or at once when it is seen', async () => {
  const h = harness();
  try {
    const net = fakeNetwork();
    const outbox = h.outbox(net.deliver, { perPeerConcurrency: 32, maxConcurrency: 256 });
    const a = queueMany(h, PEER_A, 300);
    const b = queueMany(h, PEER_B, 300);
    outbox.start();
    await settle(h);
    // Offline for a while: both peers well into their backoff.
    for (let i = 0; i < 6; i++) {
      h.clock.advance(Math.min(h.store.peerState(PEER_A)!.nextAttemptAt, h.store.peerState(PEER_B)!.nextAttemptAt) - h.clock.now());
      await settle(h);
    }
    assert.ok(h.store.peerState(PEER_A)!.failures >= 4);
    net.online.add(PEER_A);

    // A: at its next step the probe gets through, and the rest follows without waiting for time.
    h.clock.advance(h.store.peerState(PEER_A)!.nextAttemptAt - h.clock.now());
    const at = h.clock.now();
    await settle(h);
    assert.equal(h.clock.now(), at);
    assert.ok(a.every((id) => h.store.getMessage(id)!.state === 'delivered'), 'all of A delivered at its step');
    const pa = h.store.peerState(PEER_A)!;
    assert.deepEqual([pa.failures, pa.lastSuccessAt], [0, at]);

    // B: its probe failed at the same step, B comes up only now; its next step is minutes away,
    // but it connected to us: peerSeen drains it now.
    net.online.add(PEER_B);
    assert.ok(h.store.peerState(PEER_B)!.nextAttemptAt > h.clock.now() + 60_000);
    assert.ok(b.every((id) => h.store.getMessage(id)!.state === 'queued'));
    outbox.peerSeen(PEER_B);
    await settle(h);
    assert.equal(h.clock.now(), at);
    assert.ok(b.every((id) => h.store.getMessage(id)!.state === 'delivered'), 'all of B delivered once it was seen');
    assert.equal(h.store.counts().delivered, 600);
    // A peer that is not backing off: peerSeen does nothing (and costs one lookup).
    const dials = net.dialsTo(PEER_A);
    outbox.peerSeen(PEER_A);
    await settle(h);
    assert.equal(net.dialsTo(PEER_A), dials);
  } finally {
    await h.cleanup();
  }
});

test('restart with a large backlog: start() re-queues what was in flight and tries one probe per due peer, reading no more', async () => {
  const h = harness();
  try {
    const peers = Array.from({ length: 20 }, (_, i) => (i + 16).toString(16).padStart(2, '0').repeat(32));
    for (const p of peers) queueMany(h, p, 250);
    // A crash left one delivery per peer 'sending'; half the peers are backing off past the restart.
    h.store.batch(() => {
      for (const [i, p] of peers.entries()) {
        const [m] = h.store.dueForPeer(p, h.clock.now(), 1);
        h.store.transition(m!.id, 'sending', { from: ['queued'] });
        h.store.recordAttemptStart(m!.id, h.clock.now());
        h.store.setPeerState(p, { failures: 6, nextAttemptAt: h.clock.now() + (i % 2 === 0 ? 60_000 : -1), lastErrorCode: 'PEER_UNKNOWN' });
      }
    });
    assert.equal(h.store.counts().queued, 4_980);
    h.store.close();
    h.store = openStore({ path: h.path, logger: silentLogger(), clock: h.clock });

    // Every store call the outbox makes, and the rows each returns.
    const calls = new Map<string, { calls: number; rows: number }>();
    const counting = new Proxy(h.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          const out = (v as (...a: unknown[]) => unknown).apply(target, args);
          const c = calls.get(String(prop)) ?? { calls: 0, rows: 0 };
          c.calls++;
          c.rows += Array.isArray(out) ? out.length : typeof out === 'number' && prop === 'resetInFlight' ? out : 0;
          calls.set(String(prop), c);
          return out;
        };
      },
    });
    const started: string[] = [];
    const outbox = createOutbox({
      store: counting, clock: h.clock, logger: silentLogger(), random: () => 0.5, perPeerConcurrency: 32, maxConcurrency: 256,
      deliver: (m, signal) => {
        started.push(m.peerIdentity);
        return new Promise<DeliveryOutcome>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
      },
    });
    h.outboxes.push(outbox);
    const before = rawRows(h.path);
    outbox.start();
    assert.equal(calls.get('resetInFlight')!.rows, 20, 'the rows left sending');
    // The ten peers whose backoff passed get one probe each; the others are not dialled.
    assert.equal(started.length, 10);
    assert.deepEqual(new Set(started), new Set(peers.filter((_, i) => i % 2 === 1)));
    assert.ok(calls.get('dueForPeer')!.calls <= 10);
    assert.equal(calls.get('dueForPeer')!.rows, 10);
    const fetched = [...calls].filter(([k]) => k !== 'queuedPeers').reduce((n, [, c]) => n + c.rows, 0);
    assert.ok(fetched <= 20 + 10, `rows read at start: ${fetched} of a backlog of 5,000`);
    assert.ok(calls.get('queuedPeers')!.rows <= 2 * 20, 'one entry per peer per look at the queue');
    // Written: the 20 re-queued rows, nothing else of the backlog (the probes are the interrupted
    // messages of their peers, the first in line).
    assert.equal(changedRows(before, rawRows(h.path)).length, 20);
    assert.deepEqual({ ...h.store.counts(), expired: 0 }, { queued: 4_990, sending: 10, delivered: 0, failed: 0, expired: 0, held: 0, inbox: 0, unread: 0 });
  } finally {
    await h.cleanup();
  }
});
