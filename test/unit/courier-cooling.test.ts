/**
 * The courier's side of cooling (issue 12 item 4): a mailbox provider that answers with what does not
 * decode is skipped for limits.coolingMs, doubling on repeat: deposits go to the recipient's next
 * provider meanwhile, and our own fetch rounds pass it over. Real SQLite stores and a real provider
 * service over in-memory channels; the network is a stand-in that counts dials; the clock is injected.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady, generateIdentity, publicQueueId, publicQueueReadCap, secureRandomBytes, type Identity } from '../../src/crypto/index.js';
import { resolveLimits } from '../../src/limits.js';
import { silentLogger } from '../../src/log.js';
import { Courier } from '../../src/node/courier.js';
import type { PeerNetwork } from '../../src/node/index.js';
import type { ProviderObservation } from '../../src/node/provider-scores.js';
import { MailboxClient, MailboxService, ProviderStore } from '../../src/provider/index.js';
import { openStore } from '../../src/store/index.js';
import { createMemoryPair, type MessageChannel } from '../../src/transport/index.js';

const MAX = 262_144;
let dir: string;

before(async () => {
  await cryptoReady();
  dir = mkdtempSync(join(tmpdir(), 'onionpost-courier-cooling-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Lets the memory pair's setImmediate deliveries and promise chains run. */
async function flush(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

test('courier: a provider that answers what does not decode is skipped for coolingMs, twice as long on repeat; deposits go to the next provider meanwhile, fetch rounds pass it over', async () => {
  const clock = new ManualClock();
  const limits = resolveLimits({ coolingMs: 1_000, maxCoolingMs: 4_000 });
  const [me, peer, bad, good] = [generateIdentity(), generateIdentity(), generateIdentity(), generateIdentity()] as Identity[];

  // The good provider: a real service, holding the peer's public queue.
  const providerStore = new ProviderStore({ path: join(dir, 'provider.db'), logger: silentLogger(), isEnvelopeSize: (n) => n === 1024 });
  const service = new MailboxService({ identity: good!, store: providerStore, clock, logger: silentLogger(), limits: { maxEnvelope: MAX } });
  const channels: MessageChannel[] = [];
  const pair = () => {
    const p = createMemoryPair({ clock });
    channels.push(...p);
    return p;
  };
  {
    const [a, b] = pair();
    service.serve(b);
    const c = new MailboxClient({ channel: a, providerKey: good!.identityKey, clock, maxEnvelope: MAX });
    await c.subscribe(peer!, null);
    await c.createQueue(peer!, publicQueueId(peer!.identityKey, good!.identityKey), { write: null, read: publicQueueReadCap(peer!, good!.identityKey) });
  }
  // The bad one answers every request with bytes that are not a mailbox frame.
  const dials = new Map<string, number>();
  const network = {
    async dial(onion: string) {
      dials.set(onion, (dials.get(onion) ?? 0) + 1);
      const [a, b] = pair();
      if (onion === good!.onion) service.serve(b);
      else b.on('message', () => b.send(Uint8Array.of(0xff, 0xff, 0xff)));
      return a;
    },
  } as unknown as PeerNetwork;

  const store = openStore({ path: join(dir, 'node.db'), logger: silentLogger(), clock });
  const peerHex = Buffer.from(peer!.identityKey).toString('hex');
  store.deposits.setPeerMailboxes(peerHex, [bad!.onion, good!.onion], clock.now(), clock.now());
  store.mailboxProviders.put({
    onion: bad!.onion, identityKey: Buffer.from(bad!.identityKey).toString('hex'), terms: { retentionMs: 86_400_000, quotaBytes: 1 << 20, time: clock.now(), sig: new Uint8Array(64) },
    subscribedAt: clock.now(),
  });
  const observed: string[] = [];
  const closing = new AbortController();
  const courier = new Courier({
    identity: me!, store, network, pipeline: { receiveHeld: async () => [], receiptsPushed: () => 0 }, random: secureRandomBytes, clock, limits,
    logger: silentLogger(), emit: () => {}, signal: closing.signal,
    observe: (provider: string, o: ProviderObservation) => void (provider === bad!.onion && observed.push(o.ok ? 'ok' : 'failed')),
  });
  let n = 0;
  const deposit = async () => {
    const id = (++n).toString(16).padStart(32, '0');
    const envelope = randomBytes(1024);
    store.insertOutgoing({
      id, kind: 'mail', peerIdentity: peerHex, body: 'x', createdAt: clock.now(), expiresAt: clock.now() + 86_400_000,
      envelope, envelopeHash: randomBytes(32),
    });
    return courier.deposit(store.getMessage(id)!, closing.signal);
  };
  const badDials = () => dials.get(bad!.onion) ?? 0;
  const fetchRound = async () => {
    await courier.fetch();
    await flush();
  };

  try {
    assert.deepEqual(await deposit(), [good!.onion], 'the garbage answer is skipped over: the message is left at the next provider');
    assert.deepEqual([badDials(), observed.length], [1, 1]);
    assert.deepEqual(await deposit(), [good!.onion]);
    await fetchRound();
    assert.equal(badDials(), 1, 'cooling: neither deposits nor our fetch round dial it');

    clock.advance(1_000);
    await deposit();
    assert.equal(badDials(), 2, 'tried again once its cooling ended, and it answered garbage again');
    clock.advance(1_999);
    await deposit();
    await fetchRound();
    assert.equal(badDials(), 2, 'a repeat offence: twice as long');
    clock.advance(1);
    await fetchRound();
    assert.equal(badDials(), 3, 'our fetch round goes to it again after 2 × coolingMs');
    assert.equal(observed.length, badDials(), 'reputation records each answer once, never a skip');
  } finally {
    courier.close();
    closing.abort();
    await flush();
    service.close();
    for (const c of channels) c.destroy();
    providerStore.close();
    store.close();
  }
});
