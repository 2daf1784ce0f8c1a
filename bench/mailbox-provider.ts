/**
 * The provider of `bench/mailbox.ts`, in its own process (as the provider's machine would be): a
 * ProviderStore (its own SQLite file, WAL, synchronous=FULL) and a MailboxService behind a real ws
 * listener on 127.0.0.1 that routes `/mailbox/v1` to it, wired as a node's provider role is
 * (src/node/node.ts #startProvider: valid sizes are the padding buckets, the first message ends
 * the pending handshake).
 *
 *   node dist/bench/mailbox-provider.js <root dir> <max users> <requests/s per connection> <frames/s per connection> <max queued>
 *
 * A rate of 0 keeps the product's default (the service's request limit; the transport guard's
 * frame budgets, which hold a mailbox connection to the unproven budget since nothing proves it).
 *
 * IPC: reports `{type:'ready', port, providerKey, pid}` at once; answers `{type:'mem'}` with
 * `{type:'mem', rss, rssAfterGc, peakRss, stats}` (peak since the previous `mem`); exits after
 * `{type:'stop'}` or when the bench goes away.
 */
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { toHex } from '../src/bytes.js';
import { systemClock } from '../src/clock.js';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { DEFAULT_LIMITS, PADDING_BUCKETS } from '../src/limits.js';
import { createLogger, silentLogger } from '../src/log.js';
import { MAILBOX_PATH, MailboxService, ProviderStore, type ProviderStats } from '../src/provider/index.js';
import { CloseCode, createWsListener, type WsListener } from '../src/transport/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export type ProviderMessage =
  | { type: 'ready'; port: number; providerKey: string; pid: number }
  | { type: 'mem'; rss: number; rssAfterGc: number; peakRss: number; stats: ProviderStats };

async function main(): Promise<void> {
  const [root, maxUsers, rps, fps, maxQueued] = [process.argv[2], ...process.argv.slice(3, 7).map(Number)] as [string | undefined, number, number, number, number];
  if (!root || !(maxUsers > 0) || !(rps >= 0) || !(fps >= 0) || !(maxQueued > 0) || !process.send) {
    throw new Error('usage: mailbox-provider.js <root> <max users> <rps> <fps> <max queued> (started by bench/mailbox.ts with an IPC channel)');
  }
  await cryptoReady();
  const identity = generateIdentity();
  const logger = process.env.MBENCH_DEBUG ? createLogger({ level: 'debug' }) : silentLogger();
  const store = new ProviderStore({
    path: join(root, 'provider.db'), logger, limits: { maxUsers }, isEnvelopeSize: (n) => (PADDING_BUCKETS as readonly number[]).includes(n),
  });
  const service = new MailboxService({
    identity, store, clock: systemClock, logger,
    limits: { maxEnvelope: DEFAULT_LIMITS.maxEnvelope, maxQueued, ...(rps > 0 ? { requestsPerSecond: rps, requestBurst: 2 * rps } : {}) },
  });
  service.startHousekeeping();
  let listener: WsListener | undefined;
  listener = await createWsListener({
    host: '127.0.0.1', port: 0, logger, clock: systemClock,
    limits: fps > 0
      ? { framesPerSecond: fps, frameBurst: 2 * fps, unprovenFramesPerSecond: fps, unprovenFrameBurst: 2 * fps, unprovenGlobalFramesPerSecond: fps, unprovenGlobalFrameBurst: 2 * fps }
      : {},
    onChannel: (ch) => void ch.close(CloseCode.GOING_AWAY, 'mailbox only'),
    routes: {
      [MAILBOX_PATH]: (ch) => {
        service.serve(ch, { onProven: () => listener?.setTrust(ch, 'proven') });
        ch.once('message', () => listener?.handshakeDone(ch));
      },
    },
  });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(sampler);
    service.close();
    await listener?.close();
    store.close();
    process.exit(0);
  };
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'mem') {
      const rss = process.memoryUsage().rss;
      gc();
      const reply: ProviderMessage = { type: 'mem', rss, rssAfterGc: process.memoryUsage().rss, peakRss: Math.max(peakRss, rss), stats: store.stats() };
      peakRss = 0;
      process.send!(reply);
    } else if (m?.type === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.send({ type: 'ready', port: listener.port, providerKey: toHex(identity.identityKey), pid: process.pid } satisfies ProviderMessage);
}

main().catch((err) => {
  console.error('mailbox-provider:', err);
  process.exit(1);
});
