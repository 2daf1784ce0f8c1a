/**
 * Model test for the outbox state machine: random sequences of queueing, time passing, delivery
 * outcomes, kicks, sightings of peers and releases, with the invariants checked after every step.
 *
 * The model also keeps each peer's backoff the way the outbox's contract says it works (outbox.ts):
 * a 'retry' of a delivery begun at the peer's current step counts one failed step; deliveries
 * begun before it fail within the same step; a receipt, a BUSY answer, kick(peer) and
 * peerSeen(peer) of a backing-off peer end the backoff. The store's peer row must match it
 * exactly, and a delivery may begin to a backing-off peer only as its only one in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type StoredMessage } from '../../src/store/index.js';
import { DEFAULT_BACKOFF, createOutbox, retryDelay, type DeliveryOutcome, type RetryWhen } from '../../src/outbox/index.js';

const PEERS = ['11'.repeat(32), '22'.repeat(32), '33'.repeat(32)];
const TERMINAL = new Set(['delivered', 'failed', 'expired']);
const MAX_CONCURRENCY = 2;

type Outcome = 'delivered' | 'soon' | 'later' | 'busy' | 'failed' | 'held' | 'throw';
type Action =
  | { t: 'queue'; peer: number; ttlMin: number }
  | { t: 'advance'; ms: number }
  | { t: 'settle'; pick: number; outcome: Outcome }
  | { t: 'kick'; peer: number | null }
  | { t: 'seen'; peer: number }
  | { t: 'release'; peer: number };

// Weighted towards queueing and outcomes: the interesting states need a few messages per peer.
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('queue' as const), peer: fc.nat(2), ttlMin: fc.integer({ min: 1, max: 600 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 4 * 3600_000 })) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('settle' as const), pick: fc.nat(), outcome: fc.constantFrom<Outcome>('delivered', 'soon', 'later', 'busy', 'failed', 'held', 'throw') }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('kick' as const), peer: fc.option(fc.nat(2)) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('seen' as const), peer: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('release' as const), peer: fc.nat(2) }) },
);

// Two turns: deliver() settles in the first, the outbox records outcomes (group commit) in the next.
const flush = () => new Promise<void>((r) => setImmediate(() => setImmediate(r)));

/** A peer's backoff as the contract defines it. */
interface PeerModel {
  step: number;
  failures: number;
  nextAttemptAt: number;
}

interface Pending {
  m: StoredMessage;
  step: number;
  resolve: (o: DeliveryOutcome) => void;
  reject: (e: unknown) => void;
}

test('outbox model: caps, one timer, never early or after expiry, terminal states stick, delivered once; peer backoff in one row, one probe, no queue rewrites', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onionpost-outbox-model-'));
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 1, maxLength: 40 }), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.constantFrom(1, 3),
        async (actions, r, perPeer) => {
          const clock = new ManualClock();
          const path = join(dir, `m${++run}.db`);
          const store = openStore({ path, logger: silentLogger(), clock });
          // A second connection reads the rows as stored (own next_attempt_at, not the view's).
          const raw = new Database(path, { readonly: true });
          const rawRows = () =>
            new Map((raw.prepare('SELECT id, state, attempts, next_attempt_at, last_error_code, state_reason FROM messages').all() as { id: string }[]).map((x) => [x.id, JSON.stringify(x)]));
          const pending: Pending[] = [];
          const deliveredIds = new Set<string>();
          const terminal = new Map<string, string>();
          const violations: string[] = [];
          const peers = new Map<string, PeerModel>(PEERS.map((p) => [p, { step: 0, failures: 0, nextAttemptAt: 0 }]));
          let ids = 0;
          const outbox = createOutbox({
            store, clock, logger: silentLogger(), random: () => r, maxConcurrency: MAX_CONCURRENCY, perPeerConcurrency: perPeer,
            deliver: (m, signal) =>
              new Promise<DeliveryOutcome>((resolve, reject) => {
                // Recorded, not thrown: a throw here would only look like a failed delivery to the outbox.
                const pm = peers.get(m.peerIdentity)!;
                if (m.nextAttemptAt! > clock.now()) violations.push(`${m.id} attempted before next_attempt_at`);
                if (pm.nextAttemptAt > clock.now()) violations.push(`${m.id} attempted before its peer's backoff ended`);
                if (clock.now() >= m.expiresAt) violations.push(`${m.id} attempted after expiry`);
                if (deliveredIds.has(m.id)) violations.push(`${m.id} attempted after delivery`);
                const toPeer = pending.filter((p) => p.m.peerIdentity === m.peerIdentity).length;
                if (pm.failures > 0 && toPeer > 0) violations.push(`${m.id}: a second delivery to a peer that is backing off`);
                pending.push({ m, step: pm.step, resolve, reject });
                signal.addEventListener('abort', () => reject(signal.reason), { once: true });
              }),
          });
          /** What the contract says a 'retry' outcome does to the peer. */
          const peerRetry = (p: Pending, when: RetryWhen) => {
            const pm = peers.get(p.m.peerIdentity)!;
            if (p.step !== pm.step) return; // a step already counted
            pm.step++;
            if (when === 'busy') {
              pm.failures = 0;
              pm.nextAttemptAt = clock.now() + retryDelay(DEFAULT_BACKOFF, 1, 'busy', () => r);
            } else {
              pm.failures++;
              pm.nextAttemptAt = clock.now() + retryDelay(DEFAULT_BACKOFF, pm.failures, when, () => r);
            }
          };
          const forgetBackoff = (peer: string) => {
            const pm = peers.get(peer)!;
            pm.step++;
            pm.failures = 0;
            pm.nextAttemptAt = Math.min(pm.nextAttemptAt, clock.now());
          };
          try {
            outbox.start();
            for (const a of actions) {
              let rewriteCheck: { before: Map<string, string>; settled: string } | null = null;
              switch (a.t) {
                case 'queue': {
                  const id = (++ids).toString(16).padStart(32, '0');
                  store.insertOutgoing({
                    id, kind: 'chat', peerIdentity: PEERS[a.peer]!, body: 'x', createdAt: clock.now(),
                    expiresAt: clock.now() + a.ttlMin * 60_000, envelope: new Uint8Array(8), envelopeHash: new Uint8Array(32),
                  });
                  outbox.kick();
                  break;
                }
                case 'advance':
                  clock.advance(a.ms);
                  break;
                case 'settle': {
                  if (pending.length === 0) break;
                  const [p] = pending.splice(a.pick % pending.length, 1);
                  const pm = peers.get(p!.m.peerIdentity)!;
                  if (a.outcome === 'delivered') {
                    deliveredIds.add(p!.m.id);
                    if (pm.failures > 0) pm.nextAttemptAt = 0;
                    pm.failures = 0;
                    p!.resolve({ kind: 'delivered', receipt: new Uint8Array(64) });
                  } else if (a.outcome === 'soon' || a.outcome === 'later' || a.outcome === 'busy') {
                    rewriteCheck = { before: rawRows(), settled: p!.m.id };
                    peerRetry(p!, a.outcome);
                    p!.resolve({ kind: 'retry', code: 'X', when: a.outcome });
                  } else if (a.outcome === 'failed') p!.resolve({ kind: 'failed', code: 'F', reason: 'no' });
                  else if (a.outcome === 'held') p!.resolve({ kind: 'held', code: 'H', reason: 'key' });
                  else {
                    rewriteCheck = { before: rawRows(), settled: p!.m.id };
                    peerRetry(p!, 'soon');
                    p!.reject(new Error('boom'));
                  }
                  break;
                }
                case 'kick':
                  if (a.peer !== null) forgetBackoff(PEERS[a.peer]!);
                  outbox.kick(a.peer === null ? undefined : PEERS[a.peer]);
                  break;
                case 'seen':
                  if (peers.get(PEERS[a.peer]!)!.failures > 0) forgetBackoff(PEERS[a.peer]!);
                  outbox.peerSeen(PEERS[a.peer]!);
                  break;
                case 'release':
                  store.releaseHeld(PEERS[a.peer]!);
                  forgetBackoff(PEERS[a.peer]!);
                  outbox.kick(PEERS[a.peer]);
                  break;
              }
              await flush();
              // Invariants.
              assert.deepEqual(violations, []);
              const rows = store.listMessages({ direction: 'out', limit: 1000 });
              const sending = rows.filter((m) => m.state === 'sending');
              assert.equal(sending.length, outbox.inFlight, 'sending rows = deliveries in flight');
              assert.equal(sending.length, pending.length);
              assert.ok(sending.length <= MAX_CONCURRENCY, 'global cap');
              const load = new Map<string, number>();
              for (const m of sending) load.set(m.peerIdentity, (load.get(m.peerIdentity) ?? 0) + 1);
              assert.ok([...load.values()].every((n) => n <= perPeer), 'per-peer cap');
              if (perPeer === 1) assert.equal(new Set(sending.map((m) => m.peerIdentity)).size, sending.length, 'one per peer');
              assert.ok(clock.pending <= 1, 'at most one timer');
              for (const m of rows) {
                const was = terminal.get(m.id);
                if (was) assert.equal(m.state, was, `terminal state ${was} changed`);
                else if (TERMINAL.has(m.state)) terminal.set(m.id, m.state);
                if (m.state === 'delivered') assert.ok(deliveredIds.has(m.id));
                if (m.state === 'queued' || m.state === 'held') assert.ok(m.expiresAt > clock.now(), 'overdue expiry not applied');
              }
              // The peer's backoff is one row, exactly as the model says.
              for (const [peer, pm] of peers) {
                const s = store.peerState(peer);
                assert.equal(s?.failures ?? 0, pm.failures, 'failed steps of the peer');
                if (pm.failures > 0) assert.equal(s!.nextAttemptAt, pm.nextAttemptAt, "the peer's next attempt");
                for (const m of rows) if (m.peerIdentity === peer && m.state === 'queued') assert.ok(m.nextAttemptAt! >= (s?.nextAttemptAt ?? 0), "a queued message shows its peer's backoff");
              }
              // A failed attempt rewrites the message it carried and nothing else of the queue
              // (rows that began since are in flight now).
              if (rewriteCheck) {
                const begun = new Set(sending.map((m) => m.id));
                for (const [id, after] of rawRows()) {
                  if (id === rewriteCheck.settled || begun.has(id)) continue;
                  assert.equal(after, rewriteCheck.before.get(id), `row ${id} rewritten by another message's failed attempt`);
                }
              }
              const counted = store.counts();
              for (const s of ['queued', 'sending', 'delivered', 'expired', 'failed', 'held'] as const) {
                assert.equal(counted[s], rows.filter((m) => m.state === s).length, `counts().${s}`);
              }
              // Nothing due and startable is left waiting without a timer.
              const full = [...load].filter(([peer, n]) => n >= perPeer || (n > 0 && peers.get(peer)!.failures > 0)).map(([peer]) => peer);
              const due = store.dueOutgoing(clock.now(), 10, { excludePeers: full });
              if (outbox.inFlight < MAX_CONCURRENCY) assert.equal(due.length, 0, 'a due message was not started');
            }
          } finally {
            await outbox.close();
            assert.equal(clock.pending, 0);
            assert.equal(store.counts().sending, 0);
            raw.close();
            store.close();
          }
        },
      ),
      { numRuns: Number(process.env.OUTBOX_MODEL_RUNS ?? 100) },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
