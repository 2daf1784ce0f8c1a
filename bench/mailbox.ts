/**
 * A mailbox provider under load: deposits, what it holds, and an offline recipient catching up.
 *
 *   npm run bench -- mailbox [--full] [--n 5000] [--clients 8] [--window 16] [--size 1024]
 *                            [--users 100] [--hold 10000] [--fetch 10000] [--fetch-queues 10]
 *                            [--catchup 10000] [--catchup-per-sender 125] [--catchup-body 512] [--catchup-procs 2]
 *                            [--catchup-only]
 *
 * Parts (a)–(c): the provider runs in its own process (bench/mailbox-provider.ts: ProviderStore on
 * a real SQLite file, WAL, synchronous=FULL, MailboxService behind a real ws listener on 127.0.0.1
 * at /mailbox/v1); the clients are MailboxClients in this process, one ws connection each. Two DoS
 * guards are raised so that the provider, not the guards, is measured: the service's request rate
 * per connection (50/s, burst 200; `--rps`, default 1,000,000/s) and the listener's frame budgets
 * (`--fps`, default 1,000,000/s): nothing proves a mailbox connection, so it keeps the unproven
 * budget (20 frames/s, burst 128), and a connection past it is cut. `--rps 0` / `--fps 0` keep the
 * product's defaults.
 *
 *   setup    `--users` users subscribe (signed SUBSCRIBE) and each creates one queue with a write
 *            capability (signed CREATE_QUEUE).
 *   (a)      deposits/s: `--n` envelopes of `--size` bytes (a padding bucket), random contents, by
 *            `--clients` connections with `--window` DEPOSITs in flight each, round-robin over the
 *            users' queues; each resolves with the provider's signed receipt, verified. Against the
 *            raw store ceiling, same run: a bare better-sqlite3 loop on a file opened like the
 *            provider's (same openDatabase: schema, pragmas) doing the writes a deposit does (INSERT
 *            held, UPDATE queues, UPDATE accounts) in one IMMEDIATE transaction per deposit, as the
 *            store does (it does not batch). Half of it runs before the deposits, half after.
 *   (c)      provider RSS: deposits continue until the provider holds `--hold` envelopes for the
 *            `--users` users; its RSS then (and after a full GC), against its RSS idle (started,
 *            listening, empty store). `--full`: 100,000 envelopes for 1,000 users.
 *   (b)      fetch + ack alone: `--fetch` envelopes are deposited into `--fetch-queues` queues of
 *            one user while it is away. Then, timed: a fresh connection, FETCH (64 at most per
 *            answer) and ACK of every one of them, the queues in parallel on one connection, by a
 *            bare MailboxClient: no node opens or commits them (that is (d)). Against the same user's
 *            time to become reachable: an OnionpostNode started on a fresh store, on the loopback
 *            network (no Tor), until its self-check passes.
 *
 * Part (d), end to end with whole nodes and the product's limits (bench/mailbox-catchup.ts): a
 * provider node in one process, `--catchup` / `--catchup-per-sender` sender nodes spread over
 * `--catchup-procs` (2) others, the recipient node in this one, all on real SQLite files (default
 * durability) on the loopback network. A sender puts at most tagWindow (128) messages of a
 * session on the way unreceipted (PROTOCOL.md §8.2), hence 80 senders for 10,000 held mails. Each
 * sender delivers the recipient one message (sessions), the recipient goes offline, and the
 * senders send `--catchup` mails (default 10,000; `--catchup-body` bytes of text each), which
 * their nodes leave at the provider. Then, timed from `new OnionpostNode` + start() of the
 * recipient (it fetches at start): until all of them are committed in its store, and until the
 * senders show all of them `delivered` (the receipts it pushes back). Against the recipient's own
 * start → reachable on the same store with nothing held, and (b). `--catchup 0` leaves (d) out;
 * `--catchup-only` runs only (d).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../src/bytes.js';
import { systemClock } from '../src/clock.js';
import { cryptoReady, generateIdentity, type Identity } from '../src/crypto/index.js';
import { DEFAULT_LIMITS, PADDING_BUCKETS } from '../src/limits.js';
import { silentLogger } from '../src/log.js';
import type { OnionpostNode } from '../src/node/index.js';
import { MAILBOX_PATH, MAX_FETCH, MailboxClient, PROVIDER_MIGRATIONS } from '../src/provider/index.js';
import { openDatabase } from '../src/store/index.js';
import { dialWs } from '../src/transport/index.js';
import { numArg } from './args.js';
import { forkReady, stopChild } from './child.js';
import { catchUp, startReachable, type CatchUpResult } from './mailbox-catchup.js';
import type { ProviderMessage } from './mailbox-provider.js';
import { machineLabel, percentile, report, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const progress = (s: string) => process.stderr.write(`[bench mailbox] ${s}\n`);

interface Queue {
  owner: Identity;
  id: Uint8Array;
  write: Uint8Array;
  read: Uint8Array;
}

function newQueue(owner: Identity): Queue {
  return { owner, id: randomBytes(16), write: randomBytes(32), read: randomBytes(32) };
}

async function connect(port: number, providerKey: Uint8Array): Promise<MailboxClient> {
  const channel = await dialWs({ url: `ws://127.0.0.1:${port}${MAILBOX_PATH}`, timeoutMs: 10_000 });
  return new MailboxClient({ channel, providerKey, clock: systemClock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
}

/** Runs `count` jobs, `window` at a time on each client; returns each job's latency, ms. */
async function spread(clients: MailboxClient[], window: number, count: number, job: (c: MailboxClient, i: number) => Promise<void>): Promise<number[]> {
  const lat: number[] = [];
  let next = 0;
  const worker = async (c: MailboxClient) => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await job(c, i);
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: window }, () => worker(c))));
  return lat;
}

/** Deposits `count` random envelopes round-robin into `queues`; returns the latencies, ms. */
function deposit(clients: MailboxClient[], window: number, queues: Queue[], count: number, size: number): Promise<number[]> {
  return spread(clients, window, count, async (c, i) => {
    const q = queues[i % queues.length]!;
    await c.deposit(q.id, q.write, randomFillSync(new Uint8Array(size)));
  });
}

/** What a deposit writes, by a bare better-sqlite3 loop on a file opened like the provider's; returns commits/s. */
function rawCeiling(path: string, n: number, queueCount: number, size: number): number {
  const { db } = openDatabase(path, silentLogger(), { busyTimeoutMs: 5_000, walAutocheckpointPages: 1_000, journalSizeLimit: 16 << 20 }, PROVIDER_MIGRATIONS, 'raw ceiling');
  try {
    const insertHeld = db.prepare('INSERT INTO held (queue_id, seq, digest, envelope, deposited_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)');
    const bumpSeq = db.prepare('UPDATE queues SET next_seq = next_seq + 1 WHERE id = ?');
    const use = db.prepare('UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?');
    const now = Date.now();
    let qs = db.prepare('SELECT id, account_id, next_seq FROM queues').all() as { id: Buffer; account_id: number; next_seq: number }[];
    if (qs.length === 0) {
      db.transaction(() => {
        for (let i = 0; i < queueCount; i++) {
          const a = db.prepare('INSERT INTO accounts (identity_key, quota_bytes, created_at) VALUES (?, ?, ?)').run(randomBytes(32), 2 ** 40, now);
          db.prepare('INSERT INTO queues (id, account_id, write_hash, read_hash, created_at) VALUES (?, ?, ?, ?, ?)').run(randomBytes(16), a.lastInsertRowid, randomBytes(32), randomBytes(32), now);
        }
      })();
      qs = db.prepare('SELECT id, account_id, next_seq FROM queues').all() as typeof qs;
    }
    const one = db.transaction((q: (typeof qs)[number], envelope: Uint8Array) => {
      insertHeld.run(q.id, q.next_seq++, randomBytes(32), envelope, now, now + 14 * 24 * 3600 * 1000);
      bumpSeq.run(q.id);
      use.run(envelope.length, q.account_id);
    });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) one.immediate(qs[i % qs.length]!, randomFillSync(new Uint8Array(size)));
    return n / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
  }
}

function askMem(provider: ChildProcess): Promise<Extract<ProviderMessage, { type: 'mem' }>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the provider did not report its memory within 30 s')), 30_000);
    const on = (m: ProviderMessage) => {
      if (m.type !== 'mem') return;
      clearTimeout(t);
      provider.off('message', on);
      resolve(m);
    };
    provider.on('message', on);
    provider.send({ type: 'mem' });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a part adds to the report: readable lines and JSON fields. */
interface Part {
  lines: string[];
  summary: Record<string, unknown>;
  /** (b)'s fetch + ack of `fetchN`, ms. */
  fetchMs: number;
  fetchN: number;
}

export async function run(args: string[]): Promise<void> {
  const full = args.includes('--full');
  const only = args.includes('--catchup-only');
  const catchupN = numArg(args, 'catchup', 10_000);
  const perSender = numArg(args, 'catchup-per-sender', 125);
  const body = numArg(args, 'catchup-body', 512);
  // Each sender's first message (the setup's) is counter 0 of its session; the held ones 1…perSender.
  if (!(perSender >= 1 && perSender < DEFAULT_LIMITS.tagWindow)) throw new Error(`--catchup-per-sender must be 1–${DEFAULT_LIMITS.tagWindow - 1}: a sender puts at most tagWindow messages of a session on the way unreceipted`);
  await cryptoReady();
  const root = mkdtempSync(join(tmpdir(), 'onionpost-bench-mailbox-'));
  try {
    const lines: string[] = [];
    const summary: Record<string, unknown> = { bench: 'mailbox', full };
    let provider: Part | undefined;
    if (!only) {
      provider = await providerParts(args, full, root);
      lines.push(...provider.lines);
      Object.assign(summary, provider.summary);
    }
    if (catchupN > 0) {
      const d = await catchUp(join(root, 'catchup'), { n: catchupN, perSender, window: 16, body, procs: numArg(args, 'catchup-procs', 2), progress });
      const part = catchUpPart(d, provider);
      lines.push(...part.lines);
      Object.assign(summary, part.summary);
    }
    const machine = machineLabel();
    lines.push(`  machine               ${machine}`);
    report(lines, { ...summary, machine });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function catchUpPart(d: CatchUpResult, b: Part | undefined): { lines: string[]; summary: Record<string, unknown> } {
  const s = (ms: number) => round(ms / 1000, 2);
  const rate = d.n / (d.committedMs / 1000);
  const vsFetch = b && b.fetchN === d.n ? d.committedMs / b.fetchMs : null;
  return {
    lines: [
      `  (d) catch-up, end to end: ${d.n} mails from ${d.senders} senders held at a provider node for a recipient node that was offline`,
      `                        (${round(d.envelopeBytes, 0)} B envelopes; whole nodes with the product's limits, SQLite synchronous=FULL, loopback network;`,
      `                        the provider, the senders (${d.procs} processes) and the recipient each in their own processes)`,
      `      committed         ${s(d.committedMs)} s from new OnionpostNode + start() until all ${d.n} are in its store (${round(rate, 0)} msgs/s: fetch, open, commit, ack)`,
      `      delivered         ${s(d.deliveredMs)} s until the senders show all ${d.n} delivered (the receipts it pushes back)`,
      `      to be reachable   ${s(d.reachableMs)} s (the same node: start on the same store, nothing held → self-check passed); ${s(d.reachableDuringMs)} s in the timed start itself`,
      `      ratio             committed ${round(d.committedMs / d.reachableMs, 1)}×, delivered ${round(d.deliveredMs / d.reachableMs, 1)}× its time to become reachable`
        + (vsFetch !== null ? `; committed ${round(vsFetch, 2)}× (b)'s fetch + ack alone` : ''),
      `      fill (untimed)    ${s(d.fillMs)} s for the senders' nodes to send them and leave them at the provider`,
    ],
    summary: {
      catchup_n: d.n, catchup_senders: d.senders, catchup_sender_procs: d.procs, catchup_envelope_bytes: round(d.envelopeBytes, 0),
      catchup_committed_s: s(d.committedMs), catchup_delivered_s: s(d.deliveredMs), catchup_msgs_per_s: round(rate, 0),
      catchup_reachable_s: s(d.reachableMs), catchup_reachable_during_s: s(d.reachableDuringMs),
      catchup_committed_vs_reachable: round(d.committedMs / d.reachableMs, 1), catchup_delivered_vs_reachable: round(d.deliveredMs / d.reachableMs, 1),
      catchup_committed_vs_fetch_ack: vsFetch === null ? null : round(vsFetch, 2), catchup_fill_s: s(d.fillMs),
      catchup_10k_committed_s: d.n === 10_000 ? s(d.committedMs) : null,
    },
  };
}

/** Parts (a)–(c): the provider process under bare MailboxClients. */
async function providerParts(args: string[], full: boolean, root: string): Promise<Part> {
  const n = numArg(args, 'n', 5_000);
  const clientCount = Math.max(1, numArg(args, 'clients', 8));
  const window = Math.max(1, numArg(args, 'window', 16));
  const size = numArg(args, 'size', 1024);
  const users = Math.max(1, numArg(args, 'users', full ? 1_000 : 100));
  const hold = Math.max(n, numArg(args, 'hold', full ? 100_000 : 10_000));
  const fetchN = numArg(args, 'fetch', 10_000);
  const fetchQueues = Math.max(1, numArg(args, 'fetch-queues', 10));
  const rps = numArg(args, 'rps', 1_000_000);
  const fps = numArg(args, 'fps', 1_000_000);
  if (!(PADDING_BUCKETS as readonly number[]).includes(size)) throw new Error(`--size must be a padding bucket (${PADDING_BUCKETS.join(', ')}), got ${size}`);
  let provider: ChildProcess | undefined;
  const clients: MailboxClient[] = [];
  let node: OnionpostNode | undefined;
  try {
    const started = await forkReady<ProviderMessage>(
      join(here, 'mailbox-provider.js'),
      [root, String(users + 1), String(rps), String(fps), String(Math.max(32, window))],
      'mailbox provider',
    );
    provider = started.child;
    if (started.ready.type !== 'ready') throw new Error(`unexpected first message from the provider: ${started.ready.type}`);
    const { port } = started.ready;
    const providerKey = fromHex(started.ready.providerKey);
    await sleep(2_000);
    const idle = await askMem(provider);
    progress(`provider up (pid ${started.ready.pid}), idle RSS ${round(idle.rss / 2 ** 20, 1)} MB`);

    for (let i = 0; i < clientCount; i++) clients.push(await connect(port, providerKey));
    const s0 = performance.now();
    const queues = Array.from({ length: users }, () => newQueue(generateIdentity()));
    await spread(clients, window, users, async (c, i) => {
      const q = queues[i]!;
      await c.subscribe(q.owner, null);
      await c.createQueue(q.owner, q.id, { write: q.write, read: q.read });
    });
    const setupSecs = (performance.now() - s0) / 1000;
    progress(`${users} users subscribed, one queue each, in ${round(setupSecs, 1)} s`);

    // (a) Deposits, between the two halves of the raw ceiling.
    const rawPath = join(root, 'raw.db');
    const rawHalf = Math.max(1, Math.floor(n / 2));
    const raw1 = rawCeiling(rawPath, rawHalf, users, size);
    const d0 = performance.now();
    const lat = await deposit(clients, window, queues, n, size);
    const depositSecs = (performance.now() - d0) / 1000;
    const raw2 = rawCeiling(rawPath, rawHalf, users, size);
    const depositRate = n / depositSecs;
    const rawRate = 2 / (1 / raw1 + 1 / raw2);
    progress(`deposits: ${round(depositRate, 0)}/s; raw ceiling ${round(raw1, 0)} then ${round(raw2, 0)} commits/s`);

    // (c) Hold `hold` envelopes for `users` users.
    const f0 = performance.now();
    for (let done = n; done < hold; ) {
      const chunk = Math.min(hold - done, 10_000);
      await deposit(clients, window, queues, chunk, size);
      done += chunk;
      progress(`holding ${done}/${hold}`);
    }
    const fillRate = (hold - n) / Math.max((performance.now() - f0) / 1000, 1e-3);
    await sleep(2_000);
    const holding = await askMem(provider);
    if (holding.stats.held !== hold) throw new Error(`the provider holds ${holding.stats.held} envelopes, expected ${hold}`);
    progress(`holding ${holding.stats.held} for ${holding.stats.users} users: RSS ${round(holding.rss / 2 ** 20, 1)} MB (peak ${round(holding.peakRss / 2 ** 20, 1)} MB)`);

    // (b) An offline recipient: mail held for it from `fetchQueues` contacts, then its catch-up.
    const recipient = generateIdentity();
    const rq = Array.from({ length: fetchQueues }, () => newQueue(recipient));
    await clients[0]!.subscribe(recipient, null);
    for (const q of rq) await clients[0]!.createQueue(recipient, q.id, { write: q.write, read: q.read });
    await deposit(clients, window, rq, fetchN, size);
    progress(`${fetchN} held for an offline recipient in ${fetchQueues} queues`);
    await Promise.all(clients.map((c) => c.close()));
    clients.length = 0;
    const beforeFetch = await askMem(provider);
    if (beforeFetch.stats.held !== hold + fetchN) throw new Error(`the provider holds ${beforeFetch.stats.held}, expected ${hold + fetchN}`);

    // Its own time to become reachable: a node on a fresh store, loopback network, self-check passed.
    let reachableMs: number;
    ({ node, ms: reachableMs } = await startReachable(recipient, join(root, 'recipient.db'), join(root, 'loopback')));
    await node.close();
    node = undefined;

    const t0 = performance.now();
    const rc = await connect(port, providerKey);
    clients.push(rc);
    let fetched = 0;
    let acked = 0;
    let requests = 0;
    await Promise.all(rq.map(async (q) => {
      for (let after = 0, i = 0; i < fetchN + 1; i++) {
        const items = await rc.fetch(q.id, q.read, after, MAX_FETCH);
        requests++;
        if (items.length === 0) break;
        fetched += items.length;
        after = items.at(-1)!.seq;
        const n = await rc.ack(q.id, q.read, items.map((h) => h.seq));
        acked += n;
        requests++;
      }
    }));
    const fetchMs = performance.now() - t0;
    const afterFetch = await askMem(provider);
    if (fetched !== fetchN || acked !== fetchN || afterFetch.stats.held !== hold) {
      throw new Error(`fetched ${fetched}, acked ${acked} of ${fetchN}; the provider still holds ${afterFetch.stats.held} (expected ${hold})`);
    }
    progress(`recipient: reachable after ${round(reachableMs, 0)} ms, fetched and acked ${fetchN} in ${round(fetchMs, 0)} ms`);

    const mb = (b: number) => round(b / 2 ** 20, 1);
    const ratioA = depositRate / rawRate;
    return {
      fetchMs, fetchN,
      lines: [
        `mailbox: one provider process (SQLite WAL, synchronous=FULL, ws on 127.0.0.1), clients in another process; ${size} B envelopes${full ? ' (--full)' : ''}`,
        `  setup                 ${users} users: SUBSCRIBE + CREATE_QUEUE each, ${round(setupSecs, 1)} s`,
        `  (a) deposits          ${round(depositRate, 0)} deposits/s   (${n} by ${clientCount} connections × ${window} in flight, each receipt verified; p50 ${round(percentile(lat, 50), 1)} ms, p99 ${round(percentile(lat, 99), 1)} ms)`,
        `      raw store ceiling ${round(rawRate, 0)} commits/s   (bare better-sqlite3, the deposit's 3 writes per IMMEDIATE transaction; ${round(raw1, 0)} before, ${round(raw2, 0)} after)`,
        `      ratio             ${round(ratioA, 2)}×`,
        `  (c) provider RSS      ${mb(holding.rss)} MB holding ${hold} envelopes (${mb(holding.stats.heldBytes)} MB of envelopes) for ${users} users; ${mb(holding.rssAfterGc)} MB after a full GC; peak ${mb(holding.peakRss)} MB over (a) and the filling (${round(fillRate, 0)} deposits/s)`,
        `      idle RSS          ${mb(idle.rss)} MB (started, listening, empty store)   ratio ${round(holding.rss / idle.rss, 2)}×`,
        `  (b) fetch + ack       ${round(fetchMs / 1000, 2)} s for ${fetchN} envelopes held in ${fetchQueues} queues (connect, FETCH ≤ ${MAX_FETCH} per answer, ACK: ${requests} requests on one connection, ${Math.ceil(requests / fetchQueues)} in sequence per queue)`,
        `      not included      the node opening and committing what it fetched before it ACKs: that is (d)`,
        `      to be reachable   ${round(reachableMs / 1000, 2)} s (the same user's node: start on a fresh store → self-check passed, loopback network, no Tor)`,
        `      ratio             ${round(fetchMs / reachableMs, 2)}×`,
      ],
      summary: {
        n, clients: clientCount, window, envelope_bytes: size, users,
        deposits_per_s: round(depositRate, 0), deposit_p50_ms: round(percentile(lat, 50), 1), deposit_p99_ms: round(percentile(lat, 99), 1),
        raw_store_commits_per_s: round(rawRate, 0), raw_before_after: [round(raw1, 0), round(raw2, 0)], deposits_vs_raw: round(ratioA, 2),
        held: hold, held_users: users, rss_holding_mb: mb(holding.rss), rss_holding_after_gc_mb: mb(holding.rssAfterGc), rss_peak_fill_mb: mb(holding.peakRss),
        rss_idle_mb: mb(idle.rss), rss_holding_vs_idle: round(holding.rss / idle.rss, 2), fill_deposits_per_s: round(fillRate, 0),
        fetch_ack_n: fetchN, fetch_queues: fetchQueues, fetch_ack_10k_s: fetchN === 10_000 ? round(fetchMs / 1000, 2) : null, fetch_ack_s: round(fetchMs / 1000, 2),
        fetch_requests: requests, fetch_includes_node_commit: false, recipient_reachable_s: round(reachableMs / 1000, 2),
        fetch_ack_vs_reachable: round(fetchMs / reachableMs, 2),
      },
    };
  } finally {
    await node?.close().catch(() => {});
    await Promise.allSettled(clients.map((c) => c.close()));
    if (provider) await stopChild(provider, 10_000).catch(() => {});
  }
}
