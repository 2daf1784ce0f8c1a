/**
 * Model test for the outbox state machine: random sequences of queueing, time passing, delivery
 * outcomes, kicks and releases, with the invariants checked after every step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type StoredMessage } from '../../src/store/index.js';
import { createOutbox, type DeliveryOutcome } from '../../src/outbox/index.js';

const PEERS = ['11'.repeat(32), '22'.repeat(32), '33'.repeat(32)];
const TERMINAL = new Set(['delivered', 'failed', 'expired']);

type Action =
  | { t: 'queue'; peer: number; ttlMin: number }
  | { t: 'advance'; ms: number }
  | { t: 'settle'; pick: number; outcome: 'delivered' | 'soon' | 'later' | 'failed' | 'held' | 'throw' }
  | { t: 'kick'; peer: number | null }
  | { t: 'release'; peer: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ t: fc.constant('queue' as const), peer: fc.nat(2), ttlMin: fc.integer({ min: 1, max: 600 }) }),
  fc.record({ t: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 4 * 3600_000 })) }),
  fc.record({ t: fc.constant('settle' as const), pick: fc.nat(), outcome: fc.constantFrom('delivered', 'soon', 'later', 'failed', 'held', 'throw') }),
  fc.record({ t: fc.constant('kick' as const), peer: fc.option(fc.nat(2)) }),
  fc.record({ t: fc.constant('release' as const), peer: fc.nat(2) }),
);

// Two turns: deliver() settles in the first, the outbox records outcomes (group commit) in the next.
const flush = () => new Promise<void>((r) => setImmediate(() => setImmediate(r)));

test('outbox model: caps, one timer, never early or after expiry, terminal states stick, delivered once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onionpost-outbox-model-'));
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 40 }), fc.double({ min: 0, max: 0.999, noNaN: true }), async (actions, r) => {
        const clock = new ManualClock();
        const store = openStore({ path: join(dir, `m${++run}.db`), logger: silentLogger(), clock });
        const pending: { m: StoredMessage; resolve: (o: DeliveryOutcome) => void; reject: (e: unknown) => void }[] = [];
        const deliveredIds = new Set<string>();
        const terminal = new Map<string, string>();
        const violations: string[] = [];
        let ids = 0;
        const outbox = createOutbox({
          store, clock, logger: silentLogger(), random: () => r, maxConcurrency: 2,
          deliver: (m, signal) =>
            new Promise<DeliveryOutcome>((resolve, reject) => {
              // Recorded, not thrown: a throw here would only look like a failed delivery to the outbox.
              if (m.nextAttemptAt! > clock.now()) violations.push(`${m.id} attempted before next_attempt_at`);
              if (clock.now() >= m.expiresAt) violations.push(`${m.id} attempted after expiry`);
              if (deliveredIds.has(m.id)) violations.push(`${m.id} attempted after delivery`);
              pending.push({ m, resolve, reject });
              signal.addEventListener('abort', () => reject(signal.reason), { once: true });
            }),
        });
        try {
          outbox.start();
          for (const a of actions) {
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
                if (a.outcome === 'delivered') {
                  deliveredIds.add(p!.m.id);
                  p!.resolve({ kind: 'delivered', receipt: new Uint8Array(64) });
                } else if (a.outcome === 'soon' || a.outcome === 'later') p!.resolve({ kind: 'retry', code: 'X', when: a.outcome });
                else if (a.outcome === 'failed') p!.resolve({ kind: 'failed', code: 'F', reason: 'no' });
                else if (a.outcome === 'held') p!.resolve({ kind: 'held', code: 'H', reason: 'key' });
                else p!.reject(new Error('boom'));
                break;
              }
              case 'kick':
                outbox.kick(a.peer === null ? undefined : PEERS[a.peer]);
                break;
              case 'release':
                store.releaseHeld(PEERS[a.peer]!);
                outbox.kick(PEERS[a.peer]);
                break;
            }
            await flush();
            // Invariants.
            assert.deepEqual(violations, []);
            const rows = store.listMessages({ direction: 'out', limit: 1000 });
            const sending = rows.filter((m) => m.state === 'sending');
            assert.equal(sending.length, outbox.inFlight, 'sending rows = deliveries in flight');
            assert.ok(sending.length <= 2, 'global cap');
            assert.equal(new Set(sending.map((m) => m.peerIdentity)).size, sending.length, 'one per peer');
            assert.ok(clock.pending <= 1, 'at most one timer');
            for (const m of rows) {
              const was = terminal.get(m.id);
              if (was) assert.equal(m.state, was, `terminal state ${was} changed`);
              else if (TERMINAL.has(m.state)) terminal.set(m.id, m.state);
              if (m.state === 'delivered') assert.ok(deliveredIds.has(m.id));
              if (m.state === 'queued' || m.state === 'held') assert.ok(m.expiresAt > clock.now(), 'overdue expiry not applied');
            }
            // Nothing due and startable is left waiting without a timer.
            const due = store.dueOutgoing(clock.now(), 10, { excludePeers: sending.map((m) => m.peerIdentity) });
            if (outbox.inFlight < 2) assert.equal(due.length, 0, 'a due message was not started');
          }
        } finally {
          await outbox.close();
          assert.equal(clock.pending, 0);
          assert.equal(store.counts().sending, 0);
          store.close();
        }
      }),
      { numRuns: Number(process.env.OUTBOX_MODEL_RUNS ?? 60) },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
