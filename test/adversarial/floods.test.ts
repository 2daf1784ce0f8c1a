/**
 * Frame floods against a running node in its own process: every frame type a peer can send, plus
 * WebSocket pings, garbage, HELLO repeats and reconnect churn. Besides the invariants every siege
 * checks (same PID, memory bound, an honest contact's mail delivered during the attack), each test
 * checks the budget that answers the flood: work done for anonymous peers is bounded by the global
 * budgets in src/limits.ts however many connections the attacker opens, and a connection that
 * floods is cut.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { RejectCode } from '../../src/protocol/index.js';
import { siege, startSiege, type Siege } from '../fixtures/siege.js';

const L = DEFAULT_LIMITS;
let s: Siege;

before(async () => {
  s = await startSiege('onionpost-floods-');
});
after(() => s.close());

/** Most frames the victim can have taken from anonymous peers in `ms`: the global bucket's burst plus its refill. */
function unprovenFrameBudget(ms: number): number {
  return L.unprovenGlobalFrameBurst + (L.unprovenGlobalFramesPerSecond * ms) / 1000;
}

test('PING flood on 16 connections: answered at most within the global budget for anonymous peers, floods cut', async () => {
  const a = await siege(s, 'ping');
  assert.ok(a.frames > unprovenFrameBudget(a.ms) * 2, `the attack sent well over the budget (${a.frames} frames)`);
  assert.ok((a.answers[0x08] ?? 0) <= unprovenFrameBudget(a.ms), `PONGs ${a.answers[0x08]} ≤ budget ${unprovenFrameBudget(a.ms)}`);
  assert.ok(a.closedByServer > 0, 'flooding connections are cut');
});

test('unsolicited PONG flood: charged like any frame, the connection is cut', async () => {
  const a = await siege(s, 'pong');
  assert.ok(a.closedByServer > 0, `server cut flooding connections (${JSON.stringify(a.closeCodes)})`);
});

test('unsolicited REJECT flood: charged like any frame, the connection is cut', async () => {
  const a = await siege(s, 'reject');
  assert.ok(a.closedByServer > 0, `server cut flooding connections (${JSON.stringify(a.closeCodes)})`);
});

test('BUNDLE_REQUEST flood: bundles (each hands out a one-time prekey) stay within the anonymous decryption budget', async () => {
  const a = await siege(s, 'bundle');
  const budget = L.unprovenDecryptBurst + (L.unprovenDecryptsPerSecond * a.ms) / 1000;
  assert.ok((a.answers[0x03] ?? 0) <= budget, `BUNDLEs ${a.answers[0x03]} ≤ ${budget}`);
  assert.ok(a.closedByServer > 0);
});

test('WebSocket-level ping flood: control frames are charged too; pongs within budget, connections cut', async () => {
  const a = await siege(s, 'wsping');
  assert.ok(a.wsPongs <= unprovenFrameBudget(a.ms), `ws pongs ${a.wsPongs} ≤ ${unprovenFrameBudget(a.ms)}`);
  assert.ok(a.closedByServer > 0, `server cut flooding connections (${JSON.stringify(a.closeCodes)})`);
});

test('HELLO repeats and garbage, reconnecting: each costs the attacker its connection', async () => {
  for (const kind of ['hello', 'garbage'] as const) {
    const a = await siege(s, kind);
    assert.ok(a.closedByServer > 0, `${kind}: connections cut`);
    assert.ok((a.answers[0x01] ?? 0) <= a.upgraded, `${kind}: at most one HELLO answered per connection`);
  }
});

test('undecryptable INITs from reconnecting connections: DELIVERs opened bounded by the anonymous budget, the rest BUSY', async () => {
  const a = await siege(s, 'deliver');
  const answered = (a.answers[0x05] ?? 0) + (a.answers[0x06] ?? 0);
  const busy = a.rejects[RejectCode.BUSY] ?? 0;
  const opened = answered - busy;
  const budget = L.unprovenDecryptBurst + (L.unprovenDecryptsPerSecond * a.ms) / 1000;
  assert.ok(a.frames > budget * 2, `the attack sent well over the budget (${a.frames} DELIVERs)`);
  assert.ok(opened > 0, 'some were opened (and refused)');
  assert.ok(opened <= budget, `DELIVERs opened ${opened} (answered ${answered}, ${busy} of them BUSY) ≤ budget ${budget}`);
});

test('reconnect churn (connect, HELLO, close): accepting is charged too, so churn stays within the anonymous budget', async () => {
  const a = await siege(s, 'churn');
  assert.ok(a.opened > 100, `the attacker opened ${a.opened} connections`);
  const most = unprovenFrameBudget(a.ms) / L.connectionCostFrames;
  assert.ok(a.upgraded <= most, `upgrades ${a.upgraded} ≤ ${Math.floor(most)} (budget / connection cost)`);
});
