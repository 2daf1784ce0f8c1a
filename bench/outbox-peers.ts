/**
 * The recipients of `bench/outbox.ts`, in their own process (as other users' machines would be):
 * `count` identities that stay offline (nothing published in the loopback directory) until the
 * bench says `up`; then each starts an OnionpostNode on the loopback network and, unless told
 * otherwise, sends the bench's node one short message (as a contact coming back online would).
 *
 *   node dist/bench/outbox-peers.js <root dir> <count> [frames per second allowed per connection]
 *
 * IPC: reports `{type:'identities', peers}` at once, `{type:'up', ms}` after `{type:'up', to, hello}`,
 * and exits after `{type:'stop'}` or when the bench goes away.
 */
import { join } from 'node:path';
import { toHex } from '../src/bytes.js';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';

export interface PeerInfo {
  onion: string;
  identityKey: string;
  encryptionKey: string;
}

export type PeersMessage = { type: 'identities'; peers: PeerInfo[] } | { type: 'up'; ms: number };

async function main(): Promise<void> {
  const root = process.argv[2];
  const count = Number(process.argv[3]);
  if (!root || !(count > 0) || !process.send) throw new Error('usage: outbox-peers.js <root> <count> [fps] (started by bench/outbox.ts with an IPC channel)');
  const fps = process.argv[4] ? Number(process.argv[4]) : undefined;
  await cryptoReady();
  const identities = Array.from({ length: count }, () => generateIdentity());
  const nodes: OnionpostNode[] = [];

  const up = async (to: string, hello: boolean) => {
    const t0 = performance.now();
    for (const [i, identity] of identities.entries()) {
      const node = new OnionpostNode({
        identity, dbPath: join(root, `peer${i}.db`), network: loopbackNetwork(join(root, 'loopback')), logger: silentLogger(),
        selfCheckTimeoutMs: 5_000, ...(fps ? { limits: { framesPerSecond: fps, frameBurst: 2 * fps } } : {}),
      });
      await node.start();
      nodes.push(node);
    }
    if (hello) await Promise.all(nodes.map((n) => n.send({ to, subject: 'back online', body: 'hi', kind: 'chat' })));
    process.send!({ type: 'up', ms: performance.now() - t0 } satisfies PeersMessage);
  };

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(nodes.map((n) => n.close()));
    process.exit(0);
  };
  process.on('message', (m: { type?: string; to?: string; hello?: boolean }) => {
    if (m?.type === 'up') void up(m.to!, m.hello !== false);
    else if (m?.type === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.send({
    type: 'identities',
    peers: identities.map((id) => ({ onion: id.onion, identityKey: toHex(id.identityKey), encryptionKey: toHex(id.encryptionKey) })),
  } satisfies PeersMessage);
}

main().catch((err) => {
  console.error('outbox-peers:', err);
  process.exit(1);
});
