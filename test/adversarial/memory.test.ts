/**
 * Memory exhaustion through the WebSocket layer: messages made of endless tiny fragments, and frames
 * declared at the largest size and never finished, on more connections than the node takes. The
 * victim's peak RSS must stay under its idle RSS plus `inboundMemoryBound()` (src/limits.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { siege, startSiege, type Siege } from '../fixtures/siege.js';

let s: Siege;

before(async () => {
  s = await startSiege('onionpost-memory-');
});
after(() => s.close());

test('endless 1-byte fragments on many connections: memory bounded, fragmenting connections cut', async () => {
  const a = await siege(s, 'fragments', { connections: DEFAULT_LIMITS.maxConnections });
  assert.ok(a.closedByServer > 0, `fragmenting connections cut (${JSON.stringify(a.closeCodes)})`);
});

test('largest frames sent but for the last byte, on 64 connections at once: memory bounded, the biggest holders cut', async () => {
  const a = await siege(s, 'buffers', { connections: 64 });
  assert.ok(a.bytes >= 4 * DEFAULT_LIMITS.maxUnprovenBufferedBytes, `the attacker sent ${(a.bytes / 2 ** 20).toFixed(0)} MiB, more than the node holds`);
  assert.ok(a.closedByServer > 0, 'holders of the most were cut');
});
