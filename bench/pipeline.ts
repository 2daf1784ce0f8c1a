/**
 * Full-pipeline throughput between two nodes, each in its own process, over ws on 127.0.0.1.
 *
 *   npm run bench -- pipeline [--n 5000] [--warmup 300] [--body 1024] [--window 32]
 *
 * Measured: the sender queues N mail messages (1 KiB bodies) as fast as it can; the clock stops when
 * the last is 'delivered'. Each message goes through seal+sign+commit on the sender, DELIVER over
 * ws, verify+open+commit+RECEIPT on the receiver (another process), receipt verify + commit back on
 * the sender. SQLite runs with synchronous=FULL (the store's default) on both sides.
 *
 * Baseline, same run, same two processes: raw `ws` echo of a message of the same size as the
 * sealed envelope, with the same number of messages in flight as the node's perPeerConcurrency.
 *
 * Second reference, same run: the crypto every message needs whatever the pipeline around
 * it (sender: seal = X25519 keygen + DH + Ed25519 sign, then the receipt's Ed25519 verify;
 * receiver: open = DH + Ed25519 verify, then the receipt's sign), timed here, and the msgs/s it
 * alone would allow on this machine's cores. It says how much of the gap to raw ws is the crypto.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { cpus } from 'node:os';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';
import { numArg } from './args.js';
import { forkReady, stopChild } from './child.js';
import type { PeerReady } from './pipeline-peer.js';
import { ceiling, sessionCrypto } from './sessions.js';
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
    const envelopeSize = node.store.getMessage(w.ids[0]!)!.envelope!.length;
    const sync = node.store.diagnostics().synchronous;

    await rawEcho(echoPort, envelopeSize, warmup, window);
    const raw = await rawEcho(echoPort, envelopeSize, n, window);

    const cores = cpus().length;
    cryptoCeiling(bodySize, 100, cores);
    const floor = cryptoCeiling(bodySize, 1000, cores);

    const m = await pipelineRun(node, to, body, n, numArg(args, 'timeout', 600) * 1000);
    const rate = n / m.secs;
    const ratio = rate / raw;
    const machine = machineLabel();
    report(
      [
        `pipeline: ${n} mail messages (${bodySize} B body, ${envelopeSize} B envelope), two nodes in two processes over ws on 127.0.0.1, SQLite synchronous=${sync === 2 ? 'FULL' : sync}, perPeerConcurrency ${window}, per-connection frame limit ${fps > 0 ? `${fps}/s` : `default (${DEFAULT_LIMITS.framesPerSecond}/s)`} on both nodes`,
        `  node pipeline   ${round(rate, 0)} msgs/s   (${round(m.secs, 2)} s; all ${n} queued after ${round(m.queuedSecs, 2)} s)`,
        `  raw ws echo     ${round(raw, 0)} msgs/s   (${envelopeSize} B each way, ${window} in flight)`,
        `  ratio           ${round(ratio, 3)}× raw ws   (target ≥ 0.5×, and ≥ 2000 msgs/s)`,
        `  crypto alone    ${round(floor.msgsPerS, 0)} msgs/s at most   (crypto per message: sender ${round(floor.senderUs, 0)} µs, receiver ${round(floor.receiverUs, 0)} µs; ${Math.min(cores, 2)} cores)`,
        `  vs crypto       ${round(rate / floor.msgsPerS, 3)}× the crypto-only ceiling`,
        `  machine         ${machine}`,
      ],
      {
        bench: 'pipeline', msgs_per_s: round(rate, 0), raw_ws_msgs_per_s: round(raw, 0), ratio: round(ratio, 3), n,
        crypto_ceiling_msgs_per_s: round(floor.msgsPerS, 0), crypto_us_per_msg: { sender: round(floor.senderUs, 0), receiver: round(floor.receiverUs, 0) },
        vs_crypto_ceiling: round(rate / floor.msgsPerS, 3), envelope_bytes: envelopeSize, window, fps_limit: fps > 0 ? fps : DEFAULT_LIMITS.framesPerSecond, machine },
    );
  } finally {
    await node?.close().catch(() => {});
    if (peer) await stopChild(peer).catch(() => {});
    rmSync(root, { recursive: true, force: true });
  }
}
