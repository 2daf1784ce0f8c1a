/**
 * Full-pipeline throughput between two nodes, each in its own process, over ws on 127.0.0.1.
 *
 *   npm run bench -- pipeline [--n 5000] [--warmup 300] [--body 1024] [--window 32] [--statements] [--batches 64,256]
 *
 * (--statements also lists each SQL statement the two nodes ran, per message; --batches also
 * replays them with that many messages per commit, for the store ceiling at larger group commits.)
 *
 * Measured: the sender queues N mail messages (1 KiB bodies) as fast as it can; the clock stops when
 * the last is 'delivered'. Each message is encrypted on the sender's session (ratchet step, state
 * written with the queued row), sent as a DELIVER over ws, found by its tag, decrypted and committed
 * with the session's new state on the receiver (another process), and its receipt MAC checked and
 * committed back on the sender. The first warm-up message runs the agreement (BUNDLE, INIT).
 * SQLite runs with synchronous=FULL (the store's default) on both sides.
 *
 * Baseline, same run, same two processes: raw `ws` echo of a message of the same size as the
 * envelope, with the same number of messages in flight as the node's perPeerConcurrency.
 *
 * Two more references, same run, each the ceiling one part alone would allow on this machine's
 * cores:
 *   crypto  the session crypto each message needs (bench/sessions.ts), timed here;
 *   store   every statement the two nodes ran during a second run of the same size, recorded
 *           (bench/store-trace.ts) and replayed by a bare better-sqlite3 loop on a copy of each
 *           database, with the same schema, pragmas and transactions: SQLite's share of the work,
 *           with no node code.
 * Their sum per side ("crypto + store": a side runs both on its one thread) leaves, of the
 * pipeline's time, ws and the node's own code; the "cpu per message" line (each process's CPU time
 * over the measured run) says how busy each side was.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { deserialize } from 'node:v8';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { cpus } from 'node:os';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';
import { numArg, strArg } from './args.js';
import { forkReady, stopChild } from './child.js';
import type { PeerReady } from './pipeline-peer.js';
import { ceiling, sessionCrypto } from './sessions.js';
import { installStoreTrace, commitCost, regroup, replay, snapshotDb, startRecording, stopRecording, traceBreakdown, traceStats, type StoreTrace } from './store-trace.js';
import { machineLabel, report, round } from './stats.js';
import { DEFAULT_LIMITS } from '../src/limits.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Raw ws echo: `n` messages of `size` bytes with `window` in flight; returns msgs/s. */
async function rawEcho(port: number, size: number, n: number, window: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const payload = new Uint8Array(size).fill(0x61);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let got = 0;
    ws.on('error', reject);
    ws.on('message', () => {
      got++;
      if (got === n) resolve();
      else if (sent < n) {
        sent++;
        ws.send(payload);
      }
    });
    for (; sent < Math.min(window, n); sent++) ws.send(payload);
  });
  const secs = (performance.now() - t0) / 1000;
  ws.close();
  return n / secs;
}

/**
 * Times the per-message session crypto of each side (`n` messages of `bodySize` bytes, see
 * bench/sessions.ts) and the msgs/s it alone allows: each side is one process (one core at most),
 * both share `cores`.
 */
function cryptoCeiling(bodySize: number, n: number, cores: number): { senderUs: number; receiverUs: number; msgsPerS: number } {
  const r = sessionCrypto(n, 'x'.repeat(bodySize));
  return { senderUs: r.senderUs, receiverUs: r.receiverUs, msgsPerS: ceiling(r.senderUs, r.receiverUs, cores) };
}

/**
 * Replays each side's recorded statements on its database snapshot (bench/store-trace.ts) and the
 * msgs/s the store alone allows, each side one process, both sharing `cores`.
 */
function storeCeiling(
  n: number, sender: StoreTrace, receiver: StoreTrace, files: { sender: string; receiver: string }, cores: number,
) {
  const side = (t: StoreTrace, path: string) => {
    // On a copy: the snapshot stays as recording found it, for the regrouped replays.
    snapshotDb(path, `${path}.run`);
    const replayed = replay(`${path}.run`, t);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}.run${suffix}`, { force: true });
    const s = traceStats(t);
    return { replayed, us: (replayed.ms * 1000) / n, statements: s.statements / n, writes: s.writes / n, transactions: s.transactions / n };
  };
  const s = side(sender, files.sender);
  const r = side(receiver, files.receiver);
  return { sender: s, receiver: r, msgsPerS: ceiling(s.us, r.us, cores) };
}

/** CPU time (user + system) so far of this process (the sender) and of the peer's, µs. */
function cpuNow(peer: ChildProcess): Promise<{ sender: number; receiver: number }> {
  return new Promise((resolve) => {
    peer.once('message', (m) => {
      const own = process.cpuUsage();
      const theirs = m as NodeJS.CpuUsage;
      resolve({ sender: own.user + own.system, receiver: theirs.user + theirs.system });
    });
    peer.send({ type: 'cpu' });
  });
}

/** Queues `n` messages and resolves when all are delivered (bounded by `timeoutMs`). */
async function pipelineRun(node: OnionpostNode, to: string, body: string, n: number, timeoutMs: number): Promise<{ secs: number; queuedSecs: number; ids: string[] }> {
  const ids = new Set<string>();
  const delivered = new Set<string>();
  let failed: string | null = null;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const off = node.events.subscribe((ev) => {
    if (ev.type !== 'message.state') return;
    const e = ev as unknown as { id: string; state: string; reason?: string };
    if (e.state === 'delivered') {
      delivered.add(e.id);
      if (delivered.size === n && ids.size === n) finish();
    } else if (e.state === 'failed' || e.state === 'expired') failed ??= `${e.id} ${e.state}: ${e.reason ?? ''}`;
  });
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => node.send({ to, subject: `bench ${i}`, body })));
  const queuedSecs = (performance.now() - t0) / 1000;
  for (const r of results) ids.add(r.id);
  if ([...delivered].filter((id) => ids.has(id)).length === n) finish();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise<void>((_, rej) => (timer = setTimeout(() => rej(new Error(`only ${delivered.size}/${n} delivered after ${timeoutMs} ms${failed ? `; ${failed}` : ''}; sender store: ${JSON.stringify(node.store.counts())}`)), timeoutMs)))]);
  clearTimeout(timer);
  const secs = (performance.now() - t0) / 1000;
  off();
  return { secs, queuedSecs, ids: [...ids] };
}

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 5000);
  const warmup = numArg(args, 'warmup', 300);
  const bodySize = numArg(args, 'body', 1024);
  const window = numArg(args, 'window', 32);
  // Both sides limit the frames a connection may send them that ask for work (DEFAULT_LIMITS
  // .framesPerSecond, a DoS guard); raised here so the pipeline, not the guard, is measured
  // (--fps 0 keeps the defaults).
  const fps = numArg(args, 'fps', 1_000_000);
  await cryptoReady();
  installStoreTrace();
  const root = mkdtempSync(join(tmpdir(), 'onionpost-bench-pipeline-'));
  let peer: ChildProcess | undefined;
  let node: OnionpostNode | undefined;
  try {
    const started = await forkReady<PeerReady>(join(here, 'pipeline-peer.js'), [root, ...(fps > 0 ? [String(fps)] : [])], 'pipeline peer');
    peer = started.child;
    const { onion, echoPort } = started.ready;
    node = new OnionpostNode({
      identity: generateIdentity(), dbPath: join(root, 'sender.db'), network: loopbackNetwork(join(root, 'loopback')), logger: silentLogger(),
      selfCheckTimeoutMs: 5_000, outbox: { perPeerConcurrency: window },
      ...(fps > 0 ? { limits: { framesPerSecond: fps, frameBurst: 2 * fps } } : {}),
    });
    await node.start();
    const body = 'x'.repeat(bodySize);
    // As a user would: the peer is a contact. Its bundle (encryption key) is fetched and pinned at
    // the first delivery, so from then on messages are sealed when queued.
    await node.handlers['contacts.add']!({ alias: 'peer', address: onion });
    const child = peer;
    await new Promise<void>((resolve) => {
      child.once('message', () => resolve());
      child.send({ type: 'contact', onion: node!.identity.onion });
    });
    const to = 'peer';

    // Warm-up: connection, JIT, SQLite caches; also tells us the envelope size for the baseline.
    const w = await pipelineRun(node, to, body, warmup, 120_000);
    // The last one: a steady-state session message. The first (the session's INIT) may be queued
    // unsealed and sealed at its delivery; once it read as 0 bytes here, and the echo sent nothing.
    const envelopeSize = node.store.getMessage(w.ids[w.ids.length - 1]!)!.envelope!.length;
    const sync = node.store.diagnostics().synchronous;

    await rawEcho(echoPort, envelopeSize, warmup, window);
    const rawCpu0 = await cpuNow(child);
    const raw = await rawEcho(echoPort, envelopeSize, n, window);
    const rawCpu1 = await cpuNow(child);
    // Both processes' CPU per echoed message: what 0.2× of the echo's rate leaves the pipeline is
    // 5× this (on these cores), whatever it spends it on.
    const rawCpuPerMsg = (rawCpu1.sender - rawCpu0.sender + rawCpu1.receiver - rawCpu0.receiver) / n;

    const cores = cpus().length;
    cryptoCeiling(bodySize, 100, cores);
    const floor = cryptoCeiling(bodySize, 1000, cores);

    const cpu0 = await cpuNow(child);
    const m = await pipelineRun(node, to, body, n, numArg(args, 'timeout', 600) * 1000);
    const cpu1 = await cpuNow(child);
    const cpuPerMsg = { sender: (cpu1.sender - cpu0.sender) / n, receiver: (cpu1.receiver - cpu0.receiver) / n };

    // The store trace, in a second run of the same size (recording costs the node time, so the
    // measured run above records nothing): both databases as they are now, then every statement.
    // --store 0 skips it (for profiling the measured run alone).
    let store: ReturnType<typeof storeCeiling> | null = null;
    let senderTrace: StoreTrace = { transactions: [] };
    let receiverTrace: StoreTrace = { transactions: [] };
    const batches: { k: number; msgsPerS: number; senderUs: number; receiverUs: number; senderCommitUs: number; receiverCommitUs: number }[] = [];
    let commitUs: number | null = null;
    if (numArg(args, 'store', 1) !== 0) {
      const ask = (msg: object) => new Promise<void>((resolve) => {
        child.once('message', () => resolve());
        child.send(msg);
      });
      const files = { sender: join(root, 'replay-sender.db'), receiver: join(root, 'replay-receiver.db'), receiverTrace: join(root, 'receiver.trace') };
      node.store.checkpoint();
      snapshotDb(join(root, 'sender.db'), files.sender);
      await ask({ type: 'trace-start', path: files.receiver });
      startRecording();
      await pipelineRun(node, to, body, n, numArg(args, 'timeout', 600) * 1000);
      senderTrace = stopRecording();
      await ask({ type: 'trace-stop', path: files.receiverTrace });
      receiverTrace = deserialize(readFileSync(files.receiverTrace)) as StoreTrace;
      store = storeCeiling(n, senderTrace, receiverTrace, files, cores);
      // --batches 64,256: the same statements replayed with that many messages per commit.
      for (const k of strArg(args, 'batches')?.split(',').map(Number).filter((b) => b > 0) ?? []) {
        const factor = (txPerMsg: number) => Math.max(1, Math.round(k * txPerMsg));
        const b = storeCeiling(n, regroup(senderTrace, factor(store.sender.transactions)), regroup(receiverTrace, factor(store.receiver.transactions)), files, cores);
        batches.push({ k, msgsPerS: b.msgsPerS, senderUs: b.sender.us, receiverUs: b.receiver.us, senderCommitUs: (b.sender.replayed.commitMs * 1000) / n, receiverCommitUs: (b.receiver.replayed.commitMs * 1000) / n });
      }
      commitUs = commitCost(join(root, 'commit-cost.db'));
    }
    if (args.includes('--statements')) {
      for (const [side, t] of [['sender', senderTrace], ['receiver', receiverTrace]] as const) {
        const replayed = store?.[side].replayed;
        console.log(`statements per message, ${side}${replayed ? ' (count, replay µs per message)' : ''}:`);
        for (const b of traceBreakdown(t, replayed)) {
          console.log(`  ${(b.count / n).toFixed(2).padStart(6)}${replayed ? ` ${((b.ms * 1000) / n).toFixed(1).padStart(7)}` : ''}  ${b.sql}`);
        }
        if (replayed) console.log(`         ${((replayed.commitMs * 1000) / n).toFixed(1).padStart(7)}  BEGIN IMMEDIATE … COMMIT (the explicit transactions, fsyncs included)`);
      }
    }
    const rate = n / m.secs;
    const ratio = rate / raw;
    // Each side runs its crypto and its (synchronous) SQLite calls on its one thread: their times add.
    const both = store ? ceiling(floor.senderUs + store.sender.us, floor.receiverUs + store.receiver.us, cores) : null;
    const machine = machineLabel();
    report(
      [
        `pipeline: ${n} mail messages (${bodySize} B body, ${envelopeSize} B envelope), two nodes in two processes over ws on 127.0.0.1, SQLite synchronous=${sync === 2 ? 'FULL' : sync}, perPeerConcurrency ${window}, per-connection frame limit ${fps > 0 ? `${fps}/s` : `default (${DEFAULT_LIMITS.framesPerSecond}/s)`} on both nodes`,
        `  node pipeline   ${round(rate, 0)} msgs/s   (${round(m.secs, 2)} s; all ${n} queued after ${round(m.queuedSecs, 2)} s)`,
        `  cpu per message sender ${round(cpuPerMsg.sender, 0)} µs, receiver ${round(cpuPerMsg.receiver, 0)} µs   (each process's CPU time over the measured run / ${n}; ${round(1e6 / rate, 0)} µs of wall time per message)`,
        `  raw ws echo     ${round(raw, 0)} msgs/s   (${envelopeSize} B each way, ${window} in flight; cpu per message, both processes: ${round(rawCpuPerMsg, 0)} µs)`,
        `  ratio           ${round(ratio, 3)}× raw ws   (target ≥ 0.2×, ${round((0.2 * raw), 0)} msgs/s: at most ${round(1e6 / (0.2 * raw), 0)} µs per message on the sender's one thread, and on ${Math.min(cores, 2)} cores ${round((Math.min(cores, 2) * 1e6) / (0.2 * raw), 0)} µs of CPU for both processes; this run's pipeline used ${round(cpuPerMsg.sender + cpuPerMsg.receiver, 0)})`,
        `  crypto alone    ${round(floor.msgsPerS, 0)} msgs/s at most   (session crypto per message: sender ${round(floor.senderUs, 0)} µs, receiver ${round(floor.receiverUs, 0)} µs; ${Math.min(cores, 2)} cores)`,
        ...(store ? [
          `  store alone     ${round(store.msgsPerS, 0)} msgs/s at most   (SQLite replay per message: sender ${round(store.sender.us, 0)} µs, receiver ${round(store.receiver.us, 0)} µs)`,
          `  statements      sender ${round(store.sender.statements, 1)} per message (${round(store.sender.writes, 1)} writes) in ${round(store.sender.transactions, 3)} transactions; receiver ${round(store.receiver.statements, 1)} (${round(store.receiver.writes, 1)} writes) in ${round(store.receiver.transactions, 3)}`,
        ] : []),
        ...(store && both ? [
          `  crypto + store  ${round(both, 0)} msgs/s at most   (one thread per side runs both: sender ${round(floor.senderUs + store.sender.us, 0)} µs, receiver ${round(floor.receiverUs + store.receiver.us, 0)} µs per message; the rest is ws and the node's own code)`,
        ] : []),
        ...batches.map((b) => `  store at ${String(b.k).padStart(3)}/commit ${round(b.msgsPerS, 0)} msgs/s at most   (the same statements, ${b.k} messages per commit: sender ${round(b.senderUs, 0)} µs (commits ${round(b.senderCommitUs, 0)}), receiver ${round(b.receiverUs, 0)} µs (commits ${round(b.receiverCommitUs, 0)}); with crypto ${round(ceiling(floor.senderUs + b.senderUs, floor.receiverUs + b.receiverUs, cores), 0)})`),
        ...(commitUs !== null ? [`  one commit      ${round(commitUs, 0)} µs   (a bare transaction of one 4 KiB row, WAL, synchronous=FULL, on this disk, same run)`] : []),
        `  vs crypto       ${round(rate / floor.msgsPerS, 3)}× the crypto-only ceiling${store ? `, ${round(rate / store.msgsPerS, 3)}× the store-only ceiling` : ''}${both ? `, ${round(rate / both, 3)}× crypto + store` : ''}`,
        `  machine         ${machine}`,
      ],
      {
        bench: 'pipeline', msgs_per_s: round(rate, 0), raw_ws_msgs_per_s: round(raw, 0), ratio: round(ratio, 3), n,
        crypto_ceiling_msgs_per_s: round(floor.msgsPerS, 0), crypto_us_per_msg: { sender: round(floor.senderUs, 0), receiver: round(floor.receiverUs, 0) },
        vs_crypto_ceiling: round(rate / floor.msgsPerS, 3),
        ...(store ? {
          store_ceiling_msgs_per_s: round(store.msgsPerS, 0), store_us_per_msg: { sender: round(store.sender.us, 0), receiver: round(store.receiver.us, 0) },
          statements_per_msg: { sender: round(store.sender.statements, 2), receiver: round(store.receiver.statements, 2) },
          writes_per_msg: { sender: round(store.sender.writes, 2), receiver: round(store.receiver.writes, 2) },
          transactions_per_msg: { sender: round(store.sender.transactions, 3), receiver: round(store.receiver.transactions, 3) },
          // The names issue 10 asked for (the same figures as statements_ and transactions_per_msg).
          store_statements_per_msg: { sender: round(store.sender.statements, 2), receiver: round(store.receiver.statements, 2) },
          store_txns_per_msg: { sender: round(store.sender.transactions, 3), receiver: round(store.receiver.transactions, 3) },
          vs_store_ceiling: round(rate / store.msgsPerS, 3),
          crypto_store_ceiling_msgs_per_s: round(both!, 0), vs_crypto_store_ceiling: round(rate / both!, 3),
        } : {}),
        ...(batches.length > 0 ? { store_ceiling_by_batch: batches.map((b) => ({ msgs_per_commit: b.k, msgs_per_s: round(b.msgsPerS, 0), us_per_msg: { sender: round(b.senderUs, 0), receiver: round(b.receiverUs, 0) } })) } : {}),
        ...(commitUs !== null ? { commit_us: round(commitUs, 0) } : {}),
        raw_ws_cpu_us_per_msg: round(rawCpuPerMsg, 0),
        cpu_us_per_msg: { sender: round(cpuPerMsg.sender, 0), receiver: round(cpuPerMsg.receiver, 0) },
        envelope_bytes: envelopeSize, window, fps_limit: fps > 0 ? fps : DEFAULT_LIMITS.framesPerSecond, machine },
    );
  } finally {
    await node?.close().catch(() => {});
    if (peer) await stopChild(peer).catch(() => {});
    rmSync(root, { recursive: true, force: true });
  }
}
