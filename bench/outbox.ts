/**
 * The outbox at scale: a large backlog to peers that are offline, a restart with it pending, and
 * the drain once the peers come back.
 *
 *   npm run bench -- outbox [--n 100000] [--peers 20] [--window 16] [--pipeline 10000] [--hello 1]
 *
 * One sender node in this process (real SQLite, synchronous=FULL, ws on 127.0.0.1) and `--peers`
 * recipients in another process (bench/outbox-peers.ts). The recipients are contacts whose keys the
 * sender knows, so every message is sealed when queued; they start offline: nothing is published
 * for their onions, so a dial fails at once (PEER_UNKNOWN, as for an onion that is not published).
 *
 *   1. queue: N mails (1 KiB bodies) round-robin to the peers through node.send, `--window` sends
 *      in flight at a time (as a client with a few requests outstanding). Reported: the queueing rate of the first and of the last tenth of N
 *      (10,000 each for N = 100,000; target: last ≥ 0.5× first), and the dials the node made.
 *   2. restart: the node is closed and started again on the same database, with its local API.
 *      Reported: start() alone, and start → the first API answer (`node.status` over HTTP, which
 *      counts the messages by state; target ≤ 1 s).
 *   3. drain: the peers start and each sends the node one chat (an inbound connection from the
 *      peer: `--hello 0` leaves it out, and the node finds them at its next backoff step).
 *      Reported: the time to the first delivery, the rate from there to the last of the N, and
 *      the sender's RSS while draining.
 *   4. pipeline, same run, same processes: `--pipeline` fresh mails round-robin to the same (now
 *      online) peers, all queued at once (as bench/pipeline.ts does), timed to the last receipt. The drain is reported against it.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { apiClient } from '../src/api/index.js';
import { cryptoReady, generateIdentity, type Identity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork, type PeerNetwork } from '../src/node/index.js';
import { numArg } from './args.js';
import { forkReady, stopChild } from './child.js';
import type { PeersMessage } from './outbox-peers.js';
import { machineLabel, report, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
// A full GC on demand, for the memory figures (the flag only makes `gc` available).
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const progress = (s: string) => process.stderr.write(`[bench outbox] ${s}\n`);
const TOKEN = 'bench-outbox-token-0123456789abcdef';

/** The loopback network, counting the dials made to anyone but ourselves. */
function countingNetwork(dir: string, self: string, counter: { dials: number }): PeerNetwork {
  const base = loopbackNetwork(dir);
  return {
    ...base,
    dial(onion, opts) {
      if (onion !== self) counter.dials++;
      return base.dial(onion, opts);
    },
  };
}

/** Resolves when `pred` holds, checked on each of the node's state events and every second. */
function until(node: OnionpostNode, pred: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pred()) return;
      done();
      resolve();
    };
    const off = node.events.subscribe(check);
    const tick = setInterval(check, 1000);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what()}`));
    }, timeoutMs);
    const done = () => {
      off();
      clearInterval(tick);
      clearTimeout(timer);
    };
    check();
  });
}

/** Counts the node's deliveries and delivery attempts from its events. */
function tally(node: OnionpostNode) {
  const t = { delivered: 0, attempts: 0, firstDeliveredAt: 0, lastDeliveredAt: 0 };
  const off = node.events.subscribe((ev) => {
    if (ev.type !== 'message.state') return;
    const state = (ev as { state?: string }).state;
    if (state === 'sending') t.attempts++;
    else if (state === 'delivered') {
      t.delivered++;
      t.lastDeliveredAt = performance.now();
      if (t.firstDeliveredAt === 0) t.firstDeliveredAt = t.lastDeliveredAt;
    }
  });
  return { t, off };
}

/** Queues `n` mails round-robin to `aliases`, `window` at a time; returns the time at the end of each block of `block`. */
async function queue(node: OnionpostNode, aliases: string[], n: number, window: number, block: number, body: string): Promise<number[]> {
  const marks: number[] = [performance.now()];
  for (let i = 0; i < n; ) {
    const chunk = Math.min(window, n - i, block - (i % block));
    await Promise.all(Array.from({ length: chunk }, (_, k) => node.send({ to: aliases[(i + k) % aliases.length]!, subject: `bench ${i + k}`, body })));
    i += chunk;
    if (i % block === 0 || i === n) {
      marks.push(performance.now());
      if (marks.length % 2 === 0 || i === n) progress(`queued ${i}/${n}`);
    }
  }
  return marks;
}

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 100_000);
  const peerCount = numArg(args, 'peers', 20);
  const window = Math.max(1, numArg(args, 'window', 16));
  const pipelineN = numArg(args, 'pipeline', Math.min(10_000, n));
  const hello = numArg(args, 'hello', 1) > 0;
  const timeoutMs = numArg(args, 'timeout', 1800) * 1000;
  // As in bench/pipeline.ts: the per-connection frame limit (a DoS guard) is raised so that the
  // outbox, not the guard, is measured (--fps 0 keeps the defaults).
  const fps = numArg(args, 'fps', 1_000_000);
  const block = Math.max(1, Math.floor(n / 10));
  const body = 'x'.repeat(1024);
  await cryptoReady();
  const root = mkdtempSync(join(tmpdir(), 'onionpost-bench-outbox-'));
  const loopDir = join(root, 'loopback');
  let peers: ChildProcess | undefined;
  let node: OnionpostNode | undefined;
  try {
    const started = await forkReady<PeersMessage>(join(here, 'outbox-peers.js'), [root, String(peerCount), ...(fps > 0 ? [String(fps)] : [])], 'outbox peers');
    peers = started.child;
    if (started.ready.type !== 'identities') throw new Error(`unexpected first message from the peers: ${started.ready.type}`);
    const peerInfo = started.ready.peers;
    const identity: Identity = generateIdentity();
    const counter = { dials: 0 };
    const makeNode = () =>
      new OnionpostNode({
        identity, dbPath: join(root, 'sender.db'), network: countingNetwork(loopDir, identity.onion, counter), logger: silentLogger(),
        selfCheckTimeoutMs: 5_000, api: { token: TOKEN }, ...(fps > 0 ? { limits: { framesPerSecond: fps, frameBurst: 2 * fps } } : {}),
      });

    // 1. Queue N to offline peers.
    node = makeNode();
    await node.start();
    const aliases = peerInfo.map((p, i) => {
      node!.store.upsertContact({ alias: `peer${i}`, identityKey: p.identityKey, encryptionKey: p.encryptionKey, onion: p.onion, source: 'onion' });
      return `peer${i}`;
    });
    let tl = tally(node);
    const rss0 = process.memoryUsage().rss;
    const marks = await queue(node, aliases, n, window, block, body);
    const firstRate = block / ((marks[1]! - marks[0]!) / 1000);
    const lastBlock = marks.length - 1;
    const lastRate = (n - block * (lastBlock - 1)) / ((marks[lastBlock]! - marks[lastBlock - 1]!) / 1000);
    const queueSecs = (marks.at(-1)! - marks[0]!) / 1000;
    const dialsQueueing = counter.dials;
    const attemptsQueueing = tl.t.attempts;
    tl.off();
    progress(`queued ${n} in ${round(queueSecs, 1)} s: first ${round(firstRate, 0)} msgs/s, last ${round(lastRate, 0)} msgs/s; ${dialsQueueing} dials, ${attemptsQueueing} delivery attempts`);

    // 2. Restart with the backlog pending.
    await node.close();
    node = makeNode();
    tl = tally(node);
    const dialsBeforeRestart = counter.dials;
    const r0 = performance.now();
    await node.start();
    const startMs = performance.now() - r0;
    const status = await apiClient(node.apiUrl!, TOKEN).call<{ counts: Record<string, number> }>('node.status', {}, { timeoutMs: 60_000 });
    const firstApiMs = performance.now() - r0;
    const pending = (status.counts.queued ?? 0) + (status.counts.sending ?? 0);
    progress(`restart: start() ${round(startMs, 0)} ms, first API answer ${round(firstApiMs, 0)} ms, ${pending} pending`);
    // A few seconds offline after the restart, as after the queueing: what the restart dials.
    await new Promise((r) => setTimeout(r, 3_000));
    const dialsRestart = counter.dials - dialsBeforeRestart;

    // 3. The peers come up; the backlog drains.
    const sender = node;
    let rssPeak = process.memoryUsage().rss;
    const rssBeforeDrain = rssPeak;
    // When a tenth, half and nine tenths of the backlog are delivered: RSS, and what is still
    // reachable after a full GC (JS heap + buffers). Flat if draining costs memory for what is in
    // flight, not for what was queued or delivered.
    const marksAt = [0.1, 0.5, 0.9].map((f) => Math.ceil(f * n));
    const drainMem: { rss: number; live: number }[] = [];
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      if (drainMem.length < marksAt.length && tl.t.delivered >= marksAt[drainMem.length]!) {
        gc();
        const m = process.memoryUsage();
        drainMem.push({ rss: m.rss, live: m.heapUsed + m.arrayBuffers });
      }
    }, 250);
    const dialsBeforeUp = counter.dials;
    const up0 = performance.now();
    const upMs = new Promise<number>((resolve) => peers!.once('message', (m: PeersMessage) => resolve(m.type === 'up' ? m.ms : NaN)));
    peers.send({ type: 'up', to: identity.onion, hello });
    const peersUpMs = await upMs;
    await until(sender, () => tl.t.delivered >= n, timeoutMs, () => `the drain: ${tl.t.delivered}/${n} delivered; ${JSON.stringify(sender.store.counts())}`);
    clearInterval(sampler);
    const pickupMs = tl.t.firstDeliveredAt - up0;
    const drainSecs = (tl.t.lastDeliveredAt - tl.t.firstDeliveredAt) / 1000;
    const drainRate = n / Math.max(drainSecs, 1e-3);
    const dialsDrain = counter.dials - dialsBeforeUp;
    const rssAfterDrain = process.memoryUsage().rss;
    tl.off();
    progress(`drained ${n} in ${round(drainSecs, 1)} s (${round(drainRate, 0)} msgs/s); first delivery ${round(pickupMs, 0)} ms after the peers were told to start (their start: ${round(peersUpMs, 0)} ms)`);

    // 4. The pipeline between the same processes, now online.
    let pipelineRate = NaN;
    if (pipelineN > 0) {
      tl = tally(sender);
      const p0 = performance.now();
      await queue(sender, aliases, pipelineN, pipelineN, pipelineN, body);
      await until(sender, () => tl.t.delivered >= pipelineN, timeoutMs, () => `the pipeline run: ${tl.t.delivered}/${pipelineN}`);
      pipelineRate = pipelineN / ((tl.t.lastDeliveredAt - p0) / 1000);
      tl.off();
    }

    const mb = (b: number) => round(b / 2 ** 20, 0);
    const machine = machineLabel();
    report(
      [
        `outbox: ${n} mails (1 KiB bodies) to ${peerCount} offline peers, one sender node, SQLite synchronous=${node.store.diagnostics().synchronous === 2 ? 'FULL' : 'other'}, ws on 127.0.0.1, ${window} sends in flight while queueing`,
        `  queueing, first ${block}    ${round(firstRate, 0)} msgs/s`,
        `  queueing, last ${block}     ${round(lastRate, 0)} msgs/s   (${round(lastRate / firstRate, 2)}× the first; target ≥ 0.5×)`,
        `  dials while offline   ${dialsQueueing} while queueing (${round(queueSecs, 0)} s, ${attemptsQueueing} delivery attempts), ${dialsRestart} in the 3 s after the restart`,
        `  restart               start() ${round(startMs, 0)} ms; first API answer (node.status) ${round(firstApiMs, 0)} ms with ${pending} pending   (target ≤ 1000 ms)`,
        `  drain                 ${round(drainRate, 0)} msgs/s   (${n} in ${round(drainSecs, 1)} s; first delivery ${round(pickupMs / 1000, 2)} s after the peers were told to start, ${hello ? 'each sending one chat' : 'silently'}; ${dialsDrain} dials)`,
        `  pipeline, same run    ${round(pipelineRate, 0)} msgs/s   (${pipelineN} fresh mails to the same peers, online)`,
        `  drain vs pipeline     ${round(drainRate / pipelineRate, 2)}×`,
        `  sender RSS            ${mb(rss0)} MB before queueing, ${mb(rssBeforeDrain)} MB before the drain, peak ${mb(rssPeak)} MB while draining, ${mb(rssAfterDrain)} MB after`,
        `  while draining        RSS ${drainMem.map((m) => mb(m.rss)).join(' / ')} MB, live after GC (JS heap + buffers) ${drainMem.map((m) => mb(m.live)).join(' / ')} MB at 10 / 50 / 90 % delivered`,
        `  machine               ${machine}`,
      ],
      {
        bench: 'outbox', n, peers: peerCount, queue_first_msgs_per_s: round(firstRate, 0), queue_last_msgs_per_s: round(lastRate, 0),
        queue_last_vs_first: round(lastRate / firstRate, 2), block, dials_while_queueing: dialsQueueing, attempts_while_queueing: attemptsQueueing,
        dials_after_restart_3s: dialsRestart, restart_start_ms: round(startMs, 0), restart_first_api_ms: round(firstApiMs, 0), pending_at_restart: pending,
        drain_msgs_per_s: round(drainRate, 0), drain_first_delivery_ms: round(pickupMs, 0), drain_dials: dialsDrain, hello,
        pipeline_msgs_per_s: round(pipelineRate, 0), drain_vs_pipeline: round(drainRate / pipelineRate, 2),
        rss_mb: {
          before_queueing: mb(rss0), before_drain: mb(rssBeforeDrain), peak_drain: mb(rssPeak), after_drain: mb(rssAfterDrain),
          drain_10_50_90: drainMem.map((m) => mb(m.rss)),
        },
        live_mb_drain_10_50_90: drainMem.map((m) => mb(m.live)), machine,
      },
    );
  } finally {
    await node?.close().catch(() => {});
    if (peers) await stopChild(peers, 10_000).catch(() => {});
    rmSync(root, { recursive: true, force: true });
  }
}
