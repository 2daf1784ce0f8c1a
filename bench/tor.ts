/**
 * Latency over the private Tor network (3 authorities + 2 relays on 127.0.0.1, started here, owned
 * by this process, stopped at the end).
 *
 *   npm run bench -- tor [--n 200] [--warmup 20] [--body 1024]
 *
 * Two nodes, each with its own tor. Alice sends Bob 1 KiB mails one after another; a sample is
 * send() → 'delivered' (seal, commit, DELIVER through the onion, Bob's open + commit, RECEIPT back,
 * verify + commit). Interleaved with them, the baseline: a raw ws request/response through the SAME
 * onion and the SAME circuit, with the node's frame sizes (a DELIVER frame's bytes out, a RECEIPT
 * frame's bytes back), answered by a bare echo handler on Bob's side.
 *
 * How the baseline shares the onion and the circuit:
 *   - Bob's onion maps port 80 to a small front door on 127.0.0.1 (this file): WebSocket upgrades for
 *     /echo go to the echo handler, every other connection is piped to Bob's node listener. So the
 *     node's path has one extra loopback TCP hop that the raw path has not (against the node).
 *   - Alice's node dials exactly as torNetwork does (dialWs through a TorSocksAgent on her tor's SOCKS
 *     port) but with an isolation key this bench knows; the echo client dials through another agent
 *     with the SAME key. Tor (IsolateSOCKSAuth) attaches streams with the same key to the same onion
 *     to the same rendezvous circuit; the bench checks this with GETINFO stream-status and reports it.
 *
 * Also: start → reachable of Bob's node (its self-check reached its own onion) next to start → the
 * first HS_DESC UPLOADED of its onion (what tor needed before anyone could reach it).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { cryptoReady, ensurePrivateDir, generateIdentity, onionKeyBlob, type Identity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, torNetwork, type PeerNetwork, type TorNetwork } from '../src/node/index.js';
import { encodeFrame } from '../src/protocol/index.js';
import { TorSocksAgent, upTestNetwork, type HsDescEvent, type TestNetwork, type TestNetworkInfo } from '../src/tor/index.js';
import { dialWs } from '../src/transport/index.js';
import { numArg } from './args.js';
import { machineLabel, percentile, report, round } from './stats.js';

const progress = (s: string) => process.stderr.write(`[bench tor] ${s}\n`);

/** 127.0.0.1 front door for Bob's onion: /echo → raw echo handler, anything else → the node's listener. */
async function frontDoor(replyBytes: () => number) {
  let target = 0;
  const sockets = new Set<net.Socket>();
  const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 20 });
  echo.on('connection', (ws) => {
    ws.on('error', () => ws.terminate());
    ws.on('message', (data: Buffer) => ws.send(data.subarray(0, replyBytes())));
  });
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (req.url === '/echo') {
      echo.handleUpgrade(req, socket, head, (ws) => echo.emit('connection', ws, req));
      return;
    }
    const up = net.connect(target, '127.0.0.1');
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.setNoDelay(true);
    (socket as net.Socket).setNoDelay(true);
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) up.write(head);
    up.on('error', () => socket.destroy());
    socket.on('close', () => up.destroy());
    up.on('close', () => socket.destroy());
    socket.pipe(up).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    setTarget(p: number) {
      target = p;
    },
    async close() {
      for (const c of echo.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function hostOf(onion: string): string {
  return onion.endsWith('.onion') ? onion : `${onion}.onion`;
}

/** torNetwork with `publish` pointed at another local port (Bob) or `dial` using a known isolation key (Alice). */
function wrapNetwork(inner: TorNetwork, o: { publishPort?: (nodePort: number) => number; isolation?: string }): PeerNetwork {
  let agent: TorSocksAgent | undefined;
  return {
    ...(inner.proxyProtocol ? { proxyProtocol: true } : {}),
    publish: (onion, target, signal) => inner.publish(onion, o.publishPort ? { ...target, port: o.publishPort(target.port) } : target, signal),
    dial(onion, d) {
      if (!o.isolation) return inner.dial(onion, d);
      const t = inner.tor;
      if (!t) throw new Error('tor is not running');
      if (!agent || agent.socksPort !== t.socksPort) {
        agent?.destroy();
        agent = new TorSocksAgent({ socksPort: t.socksPort, isolation: o.isolation, keepAlive: false });
      }
      return dialWs({ url: `ws://${hostOf(onion)}/`, agent, signal: d.signal, timeoutMs: d.timeoutMs, limits: d.limits });
    },
    status: () => inner.status(),
    onStatus: (l) => inner.onStatus(l),
    async close() {
      agent?.destroy();
      await inner.close();
    },
  };
}

interface Started {
  node: OnionpostNode;
  net: TorNetwork;
  startedAt: number;
  uploadedAt: Promise<number>;
  reachableAt: Promise<number>;
}

async function startNode(
  root: string, name: string, identity: Identity, info: TestNetworkInfo, torPids: Set<number>, wrap: (n: TorNetwork) => PeerNetwork, exportCircuitIds = true,
): Promise<Started> {
  const dataDir = join(root, name);
  ensurePrivateDir(dataDir);
  const inner = torNetwork({ dataDir, keyBlob: () => onionKeyBlob(identity.seed), testNetwork: info, logger: silentLogger(), bootstrapTimeoutMs: 90_000, uploadWaitMs: 120_000, exportCircuitIds });
  const serviceId = identity.onion.replace(/\.onion$/, '');
  let resolveUploaded!: (t: number) => void;
  const uploadedAt = new Promise<number>((r) => (resolveUploaded = r));
  let watching = false;
  inner.onStatus((s) => {
    const t = inner.tor;
    if (t) torPids.add(t.pid);
    // 'publishing' is set just before ADD_ONION: listen from then on for our descriptor's upload.
    if (s.state === 'publishing' && t && !watching) {
      watching = true;
      t.control.on('hsDesc', (ev: HsDescEvent) => {
        if (ev.action === 'UPLOADED' && ev.address === serviceId) resolveUploaded(performance.now());
      });
    }
  });
  const node = new OnionpostNode({
    identity, dbPath: join(dataDir, 'node.db'), network: wrap(inner), logger: silentLogger(), selfCheckTimeoutMs: 120_000, dialTimeoutMs: 60_000,
    outbox: { policy: { fastBaseMs: 500, fastMaxMs: 2_000, fastAttempts: 100 } },
  });
  let resolveReachable!: (t: number) => void;
  const reachableAt = new Promise<number>((r) => (resolveReachable = r));
  node.events.subscribe((ev) => {
    if (ev.type === 'tor.status' && (ev as { reachable?: boolean }).reachable) resolveReachable(performance.now());
  });
  const startedAt = performance.now();
  await node.start();
  if (inner.tor) torPids.add(inner.tor.pid);
  return { node, net: inner, startedAt, uploadedAt, reachableAt };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

/** Circuit ids of Alice's open streams to `onion` (GETINFO stream-status: "id status circuit target"). */
async function circuitsTo(aliceNet: TorNetwork, onion: string): Promise<string[]> {
  const info = await aliceNet.tor!.control.getInfo(['stream-status']);
  const text = info.get('stream-status') ?? '';
  const host = hostOf(onion);
  return text.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 4 && f[1] === 'SUCCEEDED' && f[3]!.startsWith(`${host}:`)).map((f) => f[2]!);
}

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 200);
  const warmup = numArg(args, 'warmup', 20);
  const bodySize = numArg(args, 'body', 1024);
  await cryptoReady();
  const root = mkdtempSync(join(tmpdir(), 'onionpost-bench-tor-'));
  const torPids = new Set<number>();
  let testnet: TestNetwork | undefined;
  const nodes: OnionpostNode[] = [];
  let front: Awaited<ReturnType<typeof frontDoor>> | undefined;
  let echoWs: WebSocket | undefined;
  let echoAgent: TorSocksAgent | undefined;
  try {
    progress('starting the private Tor network (3 authorities, 2 relays)…');
    testnet = await upTestNetwork({ dir: join(root, 'net'), ownerPid: process.pid, log: (l) => progress(l) });

    // Frame sizes of the node's wire exchange, for the raw baseline.
    let receiptFrameBytes = 0;
    front = await frontDoor(() => receiptFrameBytes);
    const frontPort = front.port;
    const setTarget = front.setTarget;
    const isolation = randomBytes(16).toString('hex');
    const aliceId = generateIdentity();
    const bobId = generateIdentity();
    progress('starting two nodes, each with its own tor…');
    const [alice, bob] = await Promise.all([
      startNode(root, 'alice', aliceId, testnet.info, torPids, (inner) => wrapNetwork(inner, { isolation })),
      // Bob's onion goes to the front door (plain HTTP), so his streams carry no PROXY line.
      startNode(root, 'bob', bobId, testnet.info, torPids, (inner) => wrapNetwork(inner, { publishPort: (p) => (setTarget(p), frontPort) }), false),
    ]);
    nodes.push(alice.node, bob.node);
    const [bobUploaded, bobReachable, aliceUploaded, aliceReachable] = await withTimeout(
      Promise.all([bob.uploadedAt, bob.reachableAt, alice.uploadedAt, alice.reachableAt]), 180_000, 'both onions uploaded and reachable',
    );
    const reachableS = (bobReachable - bob.startedAt) / 1000;
    const uploadedS = (bobUploaded - bob.startedAt) / 1000;
    progress(`bob: descriptor uploaded after ${round(uploadedS)} s, reachable after ${round(reachableS)} s`);

    // Contact first (as a user would): the bundle is fetched at the first delivery, then mail is sealed when queued.
    await alice.node.handlers['contacts.add']!({ alias: 'bob', address: bobId.onion });
    const body = 'x'.repeat(bodySize);
    const first = await alice.node.send({ to: 'bob', subject: 'warm-up', body, wait: true, waitMs: 120_000 });
    if (first.state !== 'delivered') throw new Error(`first message ${first.state}: ${first.reason ?? ''}`);
    const sealed = alice.node.store.getMessage(first.id)!;
    const messageId = new Uint8Array(16);
    const deliverFrame = encodeFrame({ type: 'DELIVER', messageId, envelope: sealed.envelope! });
    receiptFrameBytes = encodeFrame({ type: 'RECEIPT', receipts: [{ messageId, mac: new Uint8Array(16) }] }).length;

    // The raw path: same tor, same isolation key, same onion and port, path /echo.
    echoAgent = new TorSocksAgent({ socksPort: alice.net.tor!.socksPort, isolation, keepAlive: false });
    const ws = new WebSocket(`ws://${hostOf(bobId.onion)}/echo`, { agent: echoAgent, perMessageDeflate: false });
    echoWs = ws;
    await withTimeout(new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }), 60_000, 'raw ws through the onion');
    let onReply: (() => void) | undefined;
    ws.on('message', () => onReply?.());
    const echoOnce = () => new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const timer = setTimeout(() => reject(new Error('raw echo: no answer within 60 s')), 60_000);
      onReply = () => {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      };
      ws.send(deliverFrame);
    });
    const sendOnce = async () => {
      const t0 = performance.now();
      const r = await alice.node.send({ to: 'bob', subject: 'bench', body, wait: true, waitMs: 120_000 });
      if (r.state !== 'delivered') throw new Error(`message ${r.id} ended ${r.state}: ${r.reason ?? ''}`);
      return performance.now() - t0;
    };

    const circuits = await circuitsTo(alice.net, bobId.onion);
    const sameCircuit = circuits.length >= 2 && new Set(circuits).size === 1;
    progress(`streams to bob's onion on alice's tor: ${circuits.length} on circuit(s) ${[...new Set(circuits)].join(',') || '?'}`);

    for (let i = 0; i < warmup; i++) {
      await sendOnce();
      await echoOnce();
    }
    progress(`measuring ${n} sequential messages, interleaved with ${n} raw round trips…`);
    const node: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < n; i++) {
      node.push(await sendOnce());
      raw.push(await echoOnce());
    }
    const circuitsAfter = await circuitsTo(alice.net, bobId.onion);
    const sameCircuitAfter = circuitsAfter.length >= 2 && new Set(circuitsAfter).size === 1;

    const p50 = percentile(node, 50);
    const p99 = percentile(node, 99);
    const rp50 = percentile(raw, 50);
    const rp99 = percentile(raw, 99);
    const machine = `private loopback Tor network (3 authorities + 2 relays on 127.0.0.1, one tor per node); ${machineLabel()}`;
    report(
      [
        `tor: ${n} sequential ${bodySize} B mails Alice → Bob after ${warmup} warm-up, each send() → delivered (receipt verified and committed)`,
        `  node send→receipt   p50 ${round(p50)} ms   p99 ${round(p99)} ms`,
        `  raw ws round trip   p50 ${round(rp50)} ms   p99 ${round(rp99)} ms   (${deliverFrame.length} B out, ${receiptFrameBytes} B back: the DELIVER and RECEIPT frame sizes)`,
        `  ratio               p50 ${round(p50 / rp50, 3)}×   p99 ${round(p99 / rp99, 3)}×   (targets ≤ 1.10×, ≤ 1.25×)`,
        `  same onion, same port; same circuit: ${sameCircuit && sameCircuitAfter ? 'yes' : 'NOT CONFIRMED'} (Alice's tor, GETINFO stream-status: both streams to ${hostOf(bobId.onion).slice(0, 12)}… on circuit ${[...new Set(circuitsAfter)].join(',')}, same SOCKS isolation key)`,
        `  bob start → descriptor uploaded ${round(uploadedS)} s, → reachable (self-check) ${round(reachableS)} s, difference ${round(reachableS - uploadedS)} s (target ≤ +1 s)`,
        `  alice start → descriptor uploaded ${round((aliceUploaded - alice.startedAt) / 1000)} s, → reachable ${round((aliceReachable - alice.startedAt) / 1000)} s`,
        `  machine             ${machine}`,
      ],
      {
        bench: 'tor', p50_ms: round(p50), p99_ms: round(p99), raw_p50_ms: round(rp50), raw_p99_ms: round(rp99), p50_ratio: round(p50 / rp50, 3),
        p99_ratio: round(p99 / rp99, 3), reachable_s: round(reachableS), descriptor_uploaded_s: round(uploadedS), reachable_minus_uploaded_s: round(reachableS - uploadedS),
        same_circuit: sameCircuit && sameCircuitAfter, n, body_bytes: bodySize, deliver_frame_bytes: deliverFrame.length, receipt_frame_bytes: receiptFrameBytes, machine,
      },
    );
  } finally {
    echoWs?.terminate();
    echoAgent?.destroy();
    await Promise.all(nodes.map((n) => n.close().catch(() => {})));
    await front?.close().catch(() => {});
    await testnet?.down().catch(() => {});
    // The nodes own their tors: closing them stopped them. Anything still alive is ours: stop it by pid.
    for (const pid of torPids) {
      if (existsSync(`/proc/${pid}`)) {
        progress(`tor ${pid} still running after close; killing it`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    rmSync(root, { recursive: true, force: true });
  }
}
