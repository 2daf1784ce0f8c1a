/**
 * Held connection slots: an attacker keeps the listener full of connections that never finish a
 * handshake (WebSocket upgrades without HELLO, or TCP connections without a request) and reopens
 * each one the node closes. A peer the node has never seen must still get in and deliver, and the
 * contact whose connection is open keeps delivering.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { siege, startSiege, type Siege } from '../fixtures/siege.js';

let s: Siege;

before(async () => {
  s = await startSiege('onionpost-slots-');
});
after(() => s.close());

test('held WebSocket slots (more than maxConnections, never HELLO): a new peer still gets in and delivers', async () => {
  const stranger = await s.nodes.make('stranger-1');
  const a = await siege(s, 'slots', { connections: DEFAULT_LIMITS.maxConnections + 64 }, stranger);
  assert.ok(a.opened >= DEFAULT_LIMITS.maxConnections, `attacker opened ${a.opened} connections`);
  await siege(s, 'slots', { connections: DEFAULT_LIMITS.maxConnections + 64 });
});

test('held TCP connections without a request: a new peer still gets in and delivers', async () => {
  const stranger = await s.nodes.make('stranger-2');
  const a = await siege(s, 'tcp', { connections: 2 * DEFAULT_LIMITS.maxConnections + 64 }, stranger);
  assert.ok(a.opened >= 2 * DEFAULT_LIMITS.maxConnections, `attacker opened ${a.opened} TCP connections`);
});
