/**
 * The other users of `bench/mailbox.ts`'s end-to-end catch-up (bench/mailbox-catchup.ts), each
 * role in its own process as their machines would be: a mailbox provider node, or `count` sender
 * nodes. All are real OnionpostNodes on real SQLite files (default durability: WAL,
 * synchronous=FULL) on the loopback network (no Tor).
 *
 *   node dist/bench/mailbox-peers.js provider <root dir> <loopback dir>
 *   node dist/bench/mailbox-peers.js senders <root dir> <loopback dir> <count>
 *
 * Several senders, because one sender puts at most tagWindow (128) messages of a session on the
 * way unreceipted (PROTOCOL.md §8.2): the rest wait in its outbox until receipts come back, so
 * 10,000 messages held for one recipient are mail from at least 79 contacts.
 *
 * IPC (bench → here → bench):
 *   both        ready                         {type:'ready', onion, count}, once started
 *               {type:'stop'} (or the bench going away): the nodes close, the process exits
 *   provider    {type:'held'}              →  {type:'held', held, heldBytes}: what the provider holds now
 *   senders     {type:'hello', to}         →  {type:'hello', states, mailboxes}: each sender sends one
 *                                             message and waits for it (the session, and the providers
 *                                             the recipient's bundle lists); the distinct outcomes
 *               {type:'fill', to, n, window, body}
 *                                          →  {type:'filled', ms, inMailbox}: the senders send `n` mails
 *                                             (`body` bytes of text) between them, as evenly as they go,
 *                                             to the offline recipient (node.send, `window` in flight each,
 *                                             all senders at once); answered once every one of them is
 *                                             queued with a provider's deposit receipt (in_mailbox)
 *               {type:'watch'}             →  {type:'delivered', at, delivered}: once every filled
 *                                             message is `delivered` at its sender (at:
 *                                             performance.timeOrigin + now, ms)
 */
import { join } from 'node:path';
import { toHex } from '../src/bytes.js';
import { cryptoReady, generateIdentity, parseOnionAddress } from '../src/crypto/index.js';
import { createLogger, silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork, type NodeOptions } from '../src/node/index.js';

export type PeersMessage =
  | { type: 'ready'; onion: string; count: number }
  | { type: 'held'; held: number; heldBytes: number }
  | { type: 'hello'; states: string[]; mailboxes: string[] }
  | { type: 'filled'; ms: number; inMailbox: number }
  | { type: 'delivered'; at: number; delivered: number }
  | { type: 'failed'; error: string };

export type PeersCommand =
  | { type: 'held' }
  | { type: 'hello'; to: string }
  | { type: 'fill'; to: string; n: number; window: number; body: number }
  | { type: 'watch' }
  | { type: 'stop' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T, R>(items: readonly T[], width: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

async function main(): Promise<void> {
  const [role, root, loopback, countArg] = process.argv.slice(2);
  const count = role === 'provider' ? 1 : Number(countArg);
  if ((role !== 'provider' && role !== 'senders') || !root || !loopback || !(count > 0) || !process.send) {
    throw new Error('usage: mailbox-peers.js provider <root> <loopback> | senders <root> <loopback> <count> (started by bench/mailbox-catchup.ts with an IPC channel)');
  }
  await cryptoReady();
  const logger = process.env.MBENCH_DEBUG ? createLogger({ level: 'debug' }) : silentLogger();
  const make = (name: string, extra: Partial<NodeOptions> = {}) => new OnionpostNode({
    identity: generateIdentity(), dbPath: join(root, `${name}.db`), network: loopbackNetwork(loopback),
    logger: logger.child({ node: name }), selfCheckTimeoutMs: 30_000, ...extra,
  });
  const nodes: OnionpostNode[] = [];
  for (let i = 0; i < count; i++) {
    // Nobody starts a session with a sender, so it keeps one one-time prekey instead of a pool of
    // 100: generating those was two thirds of each sender's start-up (about 0.12 s).
    const node = role === 'provider'
      ? make('provider', { provider: { dbPath: join(root, 'provider-held.db') } })
      : make(`sender${i}`, { limits: { oneTimePrekeyPool: 1, oneTimePrekeyRefillBelow: 0 } });
    await node.start();
    nodes.push(node);
  }
  const send = (m: PeersMessage) => process.send!(m);

  /** The filled messages' ids, and those of them delivered so far (by the senders' state events). */
  const filled = new Set<string>();
  const delivered = new Set<string>();
  let watching = false;
  const report = () => {
    watching = false;
    send({ type: 'delivered', at: performance.timeOrigin + performance.now(), delivered: delivered.size });
  };
  for (const s of nodes) {
    s.events.subscribe((ev) => {
      if (ev.type !== 'message.state' || ev['state'] !== 'delivered' || !filled.has(String(ev['id']))) return;
      delivered.add(String(ev['id']));
      if (watching && delivered.size === filled.size) report();
    });
  }

  const hello = async (to: string) => {
    // A few at a time: each is an INIT, and the recipient opens strangers' INITs at a bounded rate.
    const r = await pool(nodes, 8, async (s) => {
      const sent = await s.send({ to, subject: 'hello', body: 'first', wait: true, waitMs: 60_000 });
      return { state: sent.state, mailboxes: s.store.deposits.peerMailboxes(s.store.getMessage(sent.id)!.peerIdentity).join() };
    });
    send({ type: 'hello', states: [...new Set(r.map((x) => x.state))], mailboxes: [...new Set(r.map((x) => x.mailboxes))] });
  };

  const fill = async (to: string, n: number, window: number, bodyBytes: number) => {
    const t0 = performance.now();
    const body = 'x'.repeat(bodyBytes);
    const share = (j: number) => Math.floor(n / nodes.length) + (j < n % nodes.length ? 1 : 0);
    await Promise.all(nodes.map((s, j) => pool(Array.from({ length: share(j) }, (_, i) => i), window, async (i) => {
      filled.add((await s.send({ to, subject: `held ${j}.${i}`, body })).id);
    })));
    // Each sender's sweep leaves its queue at the provider one message at a time. Done when no
    // message is being attempted and none waits without a provider's receipt.
    const peer = toHex(parseOnionAddress(to).identityKey);
    const settled = (s: OnionpostNode, j: number) => {
      const c = s.store.counts();
      return c.queued === share(j) && c.sending === 0 && s.store.deposits.undeposited(peer, 1).length === 0;
    };
    const end = Date.now() + 10 * 60_000;
    for (let left = [...nodes.keys()]; left.length > 0; left = left.filter((j) => !settled(nodes[j]!, j))) {
      if (Date.now() > end) throw new Error(`${left.length} senders still have mail not left at the provider after 10 min`);
      await sleep(50);
    }
    send({ type: 'filled', ms: performance.now() - t0, inMailbox: nodes.reduce((a, s) => a + s.store.counts().queued, 0) });
  };

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(nodes.map((n) => n.close()));
    process.exit(0);
  };
  const fail = (err: unknown) => send({ type: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.on('message', (m: PeersCommand) => {
    if (m?.type === 'held') {
      const p = nodes[0]!.status().provider;
      send({ type: 'held', held: p?.held ?? -1, heldBytes: p?.heldBytes ?? -1 });
    }
    else if (m?.type === 'hello') hello(m.to).catch(fail);
    else if (m?.type === 'fill') fill(m.to, m.n, m.window, m.body).catch(fail);
    else if (m?.type === 'watch') {
      watching = true;
      if (delivered.size === filled.size) report();
    } else if (m?.type === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  send({ type: 'ready', onion: nodes[0]!.identity.onion, count: nodes.length });
}

main().catch((err) => {
  console.error('mailbox-peers:', err);
  process.exit(1);
});
