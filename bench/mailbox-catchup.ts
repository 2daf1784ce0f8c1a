/**
 * Part (d) of `bench/mailbox.ts`: a recipient that was offline catching up, end to end, with whole
 * nodes. A provider node runs in one process, the sender nodes in `procs` others
 * (bench/mailbox-peers.ts), the recipient node in this one; all are OnionpostNodes on real SQLite files (WAL,
 * synchronous=FULL) on the loopback network (no Tor).
 *
 *   setup     the recipient starts and subscribes at the provider (mailboxes add); each sender
 *             sends it one message and waits until delivered: their sessions, and the provider list
 *             the recipient's bundle carries.
 *   baseline  the recipient closes and starts again on the same store with nothing held: new
 *             OnionpostNode → start() → self-check passed (reachable). Then it closes again.
 *   fill      the senders send `n` mails between them; the recipient is offline, so each sender's
 *             node leaves them at the provider (its sweep deposits its queue), until every one is
 *             in_mailbox and the provider holds n.
 *   timed     new OnionpostNode → start() (which fetches from the provider): until all n are
 *             committed in its store (one `message.received` event each, emitted after the commit),
 *             and until the senders show all n `delivered` (the receipts the recipient pushes back).
 *             Then checked: the provider holds nothing, the inbox has every message once.
 *
 * Why several senders: one sender puts at most tagWindow (128) messages of a session on the way
 * unreceipted (PROTOCOL.md §8.2), so n held messages come from at least n / 128 contacts.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity, type Identity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';
import { forkReady, stopChild } from './child.js';
import type { PeersCommand, PeersMessage } from './mailbox-peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a node for `identity` on `dbPath` (loopback network in `loopbackDir`) and waits until its
 * self-check passes; returns it, and the time from `new OnionpostNode` to reachable, ms. `onNode`
 * sees the node before it starts.
 */
export async function startReachable(identity: Identity, dbPath: string, loopbackDir: string, onNode?: (n: OnionpostNode) => void): Promise<{ node: OnionpostNode; ms: number }> {
  const t0 = performance.now();
  const node = new OnionpostNode({ identity, dbPath, network: loopbackNetwork(loopbackDir), logger: silentLogger(), selfCheckTimeoutMs: 30_000 });
  onNode?.(node);
  await node.start();
  for (let i = 0; !node.reachable; i++) {
    if (i > 6_000) throw new Error('the node did not become reachable within 30 s');
    await sleep(5);
  }
  return { node, ms: performance.now() - t0 };
}

export interface CatchUpOptions {
  /** Messages held for the recipient. */
  n: number;
  /** Messages per sender at most (≤ tagWindow − 1: each sender's first message is the setup's). */
  perSender: number;
  /** Sends in flight per sender while filling. */
  window: number;
  /** Text bytes per message. */
  body: number;
  /** Processes the sender nodes are spread over (their commits then run in parallel while filling). */
  procs: number;
  progress: (s: string) => void;
}

export interface CatchUpResult {
  n: number;
  senders: number;
  /** Processes the senders ran in. */
  procs: number;
  /** Average envelope size held at the provider, bytes. */
  envelopeBytes: number;
  /** The recipient's own start → reachable on the same store, nothing held, ms. */
  reachableMs: number;
  /** Start → reachable in the timed start itself (the fetch running meanwhile), ms. */
  reachableDuringMs: number;
  /** Start → all n committed in the recipient's store, ms. */
  committedMs: number;
  /** Start → the senders show all n delivered, ms. */
  deliveredMs: number;
  /** The fill: the senders' sends until every message was in_mailbox, ms. */
  fillMs: number;
}

function next<T extends PeersMessage['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<PeersMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', on);
      reject(new Error(`a peers process did not answer ${type} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const on = (m: PeersMessage) => {
      if (m.type !== type && m.type !== 'failed') return;
      clearTimeout(timer);
      child.off('message', on);
      if (m.type === 'failed') reject(new Error(`a peers process failed: ${m.error}`));
      else resolve(m as Extract<PeersMessage, { type: T }>);
    };
    child.on('message', on);
  });
}

/** Sends `c` to `child`; resolves with its answer of type `type`. */
function ask<T extends PeersMessage['type']>(child: ChildProcess, c: PeersCommand, type: T, timeoutMs: number): Promise<Extract<PeersMessage, { type: T }>> {
  const answer = next(child, type, timeoutMs);
  child.send(c);
  return answer;
}

async function fork(root: string, role: 'provider' | 'senders', count = 1, loopback = join(root, 'loopback')): Promise<{ child: ChildProcess; onion: string }> {
  mkdirSync(root, { recursive: true });
  const started = await forkReady<PeersMessage>(join(here, 'mailbox-peers.js'), [role, root, loopback, String(count)], `mailbox ${role}`, 5 * 60_000);
  if (started.ready.type !== 'ready') throw new Error(`unexpected first message from the ${role}: ${started.ready.type}`);
  return { child: started.child, onion: started.ready.onion };
}

export async function catchUp(root: string, o: CatchUpOptions): Promise<CatchUpResult> {
  const { n } = o;
  const senders = Math.ceil(n / o.perSender);
  const procs = Math.max(1, Math.min(o.procs, senders));
  // Process k runs senders[k] nodes and sends share[k] of the n mails (each sender ≤ perSender).
  const counts = Array.from({ length: procs }, (_, k) => Math.floor(senders / procs) + (k < senders % procs ? 1 : 0));
  const shares = counts.map((c) => Math.floor((n * c) / senders));
  shares[0]! += n - shares.reduce((a, b) => a + b, 0);
  mkdirSync(root, { recursive: true });
  const loopback = join(root, 'loopback');
  const children: ChildProcess[] = [];
  let node: OnionpostNode | undefined;
  let mark = performance.now();
  const lap = () => {
    const now = performance.now();
    const s = ((now - mark) / 1000).toFixed(1);
    mark = now;
    return s;
  };
  try {
    const started = await Promise.allSettled([fork(root, 'provider'), ...counts.map((c, k) => fork(join(root, `senders${k}`), 'senders', c, join(root, 'loopback')))]);
    for (const r of started) if (r.status === 'fulfilled') children.push(r.value.child);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    const [p, ...ss] = children;
    const provider = (started[0] as PromiseFulfilledResult<{ onion: string }>).value.onion;
    const all = async <T extends PeersMessage['type']>(c: (k: number) => PeersCommand, type: T, timeoutMs: number) =>
      Promise.all(ss.map((child, k) => ask(child, c(k), type, timeoutMs)));
    o.progress(`catch-up: a provider node and ${senders} sender nodes (in ${procs} processes) started in ${lap()} s`);
    const identity = generateIdentity();
    const dbPath = join(root, 'recipient.db');

    ({ node } = await startReachable(identity, dbPath, loopback));
    await node.mailboxes.add(provider);
    const hellos = await all(() => ({ type: 'hello', to: identity.onion }), 'hello', 5 * 60_000);
    const states = [...new Set(hellos.flatMap((h) => h.states))];
    const lists = [...new Set(hellos.flatMap((h) => h.mailboxes))];
    if (states.join() !== 'delivered' || lists.join() !== provider) {
      throw new Error(`the first messages are [${states.join(', ')}], the senders know the providers [${lists.join(' | ')}]`);
    }
    await node.close();
    node = undefined;
    o.progress(`catch-up: the recipient subscribed, and each sender's first message to it delivered, in ${lap()} s`);

    const base = await startReachable(identity, dbPath, loopback);
    await base.node.close();

    const fills = await all((k) => ({ type: 'fill', to: identity.onion, n: shares[k]!, window: o.window, body: o.body }), 'filled', 15 * 60_000);
    const filled = { ms: Math.max(...fills.map((f) => f.ms)), inMailbox: fills.reduce((a, f) => a + f.inMailbox, 0) };
    const before = await ask(p!, { type: 'held' }, 'held', 30_000);
    if (before.held !== n || filled.inMailbox !== n) throw new Error(`the provider holds ${before.held}, the senders show ${filled.inMailbox} in_mailbox, of ${n}`);
    o.progress(`catch-up: ${n} mails from ${senders} senders held at the provider node for the offline recipient (filled in ${lap()} s)`);

    const deliveredAnswer = all(() => ({ type: 'watch' }), 'delivered', 15 * 60_000);
    await sleep(200);
    let received = 0;
    let committedAt = 0;
    let allCommitted: () => void = () => {};
    const committed = new Promise<void>((r) => (allCommitted = r));
    const t0 = performance.now();
    const timed = await startReachable(identity, dbPath, loopback, (r) => {
      r.events.subscribe((ev) => {
        if (ev.type !== 'message.received') return;
        if (++received === n) {
          committedAt = performance.now();
          allCommitted();
        }
      });
    });
    node = timed.node;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${received} of ${n} committed after 15 min`)), 15 * 60_000);
    });
    await Promise.race([committed, limit]).finally(() => clearTimeout(timer));
    const answers = await deliveredAnswer;
    const deliveredMs = Math.max(...answers.map((a) => a.at)) - (performance.timeOrigin + t0);
    const delivered = answers.reduce((a, d) => a + d.delivered, 0);
    const after = await ask(p!, { type: 'held' }, 'held', 30_000);
    if (delivered !== n || after.held !== 0) throw new Error(`${delivered} of ${n} delivered; the provider still holds ${after.held}`);
    const inbox = node.store.counts().inbox;
    if (inbox !== n + senders) throw new Error(`the recipient's inbox holds ${inbox}, expected ${n + senders}`);
    return {
      n, senders, procs, envelopeBytes: before.heldBytes / before.held, reachableMs: base.ms, reachableDuringMs: timed.ms,
      committedMs: committedAt - t0, deliveredMs, fillMs: filled.ms,
    };
  } finally {
    await node?.close().catch(() => {});
    await Promise.allSettled(children.map((c) => stopChild(c, 10_000)));
  }
}
