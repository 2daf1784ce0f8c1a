/**
 * Reachability follows our own network: it drops the moment the network says our tor is gone
 * (before any restart), and comes back only after the re-published onion passes a self-check.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loopbackNetwork, type NetworkStatus, type PeerNetwork } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-reachability-');
});
after(() => t.cleanup());

/** The loopback network with a status the test sets, as tor-network reports tor's exits and restarts. */
function steerable(inner: PeerNetwork) {
  let status: NetworkStatus = { mode: 'tor', bootstrap: 100, state: 'online', generation: 1 };
  const listeners = new Set<(s: NetworkStatus) => void>();
  const net: PeerNetwork = {
    publish: (onion, target, signal) => inner.publish(onion, target, signal),
    dial: (onion, opts) => inner.dial(onion, opts),
    close: () => inner.close(),
    status: () => status,
    onStatus(l) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };
  const set = (s: Partial<NetworkStatus>) => {
    status = { ...status, ...s };
    for (const l of listeners) l(status);
  };
  return { net, set };
}

test('status says reachable: false the moment our tor is gone, and true again after the re-publish', async () => {
  const { net, set } = steerable(loopbackNetwork(join(t.root, 'loopback')));
  const node = await t.make('solo', { network: net });
  await eventually(() => node.status().reachable, 10_000, 'first self-check');
  const seen: boolean[] = [];
  const off = node.events.subscribe((ev) => {
    if (ev.type === 'tor.status') seen.push(ev.reachable as boolean);
  });

  set({ state: 'restarting', bootstrap: 0 }); // tor exited; tor-network reports it at once
  assert.equal(node.status().reachable, false, 'no grace period');
  assert.deepEqual(seen, [false], 'subscribers are told once, with reachable: false');
  set({ state: 'bootstrapping' });
  assert.equal(node.status().reachable, false);

  set({ state: 'online', bootstrap: 100, generation: 2 }); // re-published
  await eventually(() => node.status().reachable, 10_000, 'self-check after the re-publish');
  off();
  assert.equal(seen[seen.length - 1], true);
});
