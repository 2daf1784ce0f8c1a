/**
 * The receiving side of `bench/pipeline.ts`, in its own process (as a second user's machine would
 * be): an OnionpostNode on the loopback network, plus a raw `ws` echo server on 127.0.0.1 for the
 * baseline. Started with an IPC channel by the bench; reports `{onion, echoPort}` when ready, adds
 * the sender as a contact when told `{type:'contact', onion}`, records its store's statements
 * between `trace-start` and `trace-stop` (bench/store-trace.ts), and exits when told to stop or
 * when the bench goes away.
 *
 *   node dist/bench/pipeline-peer.js <root dir> [frames per second allowed per connection, default: the node's default]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { WebSocketServer } from 'ws';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { createLogger, silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';
import { installStoreTrace, snapshotDb, startRecording, stopRecording } from './store-trace.js';

export interface PeerReady {
  type: 'ready';
  onion: string;
  echoPort: number;
}

async function main(): Promise<void> {
  const root = process.argv[2];
  if (!root || !process.send) throw new Error('usage: pipeline-peer.js <root> (started by bench/pipeline.ts with an IPC channel)');
  await cryptoReady();
  installStoreTrace();
  const fps = process.argv[3] ? Number(process.argv[3]) : undefined;
  const identity = generateIdentity();
  const node = new OnionpostNode({
    identity, dbPath: join(root, 'peer.db'), network: loopbackNetwork(join(root, 'loopback')), logger: process.env['ONIONPOST_BENCH_LOG'] ? createLogger({ level: 'debug' }) : silentLogger(), selfCheckTimeoutMs: 5_000,
    ...(fps ? { limits: { framesPerSecond: fps, frameBurst: 2 * fps } } : {}),
  });
  await node.start();

  // Raw baseline: every binary message is sent straight back.
  const echo = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });
  echo.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve, reject) => {
    echo.once('listening', resolve);
    echo.once('error', reject);
  });
  const echoPort = (echo.address() as { port: number }).port;

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const c of echo.clients) c.terminate();
    await new Promise<void>((r) => echo.close(() => r()));
    await node.close();
    process.exit(0);
  };
  process.on('message', (m: { type?: string; onion?: string; path?: string }) => {
    if (m?.type === 'stop') void stop();
    else if (m?.type === 'cpu') process.send!(process.cpuUsage());
    // The store trace (bench/store-trace.ts): a snapshot of the database, then every statement.
    else if (m?.type === 'trace-start' && m.path) {
      node.store.checkpoint();
      snapshotDb(join(root, 'peer.db'), m.path);
      startRecording();
      process.send!({ type: 'trace-started' });
    } else if (m?.type === 'trace-stop' && m.path) {
      writeFileSync(m.path, serialize(stopRecording()));
      process.send!({ type: 'trace-stopped' });
    }
    // The sender is our contact too, as between two users who write to each other: its mail is
    // opened at once instead of waiting for the budget of strangers' decryptions.
    else if (m?.type === 'contact' && m.onion) {
      Promise.resolve(node.handlers['contacts.add']!({ alias: 'sender', address: m.onion })).then(
        () => process.send!({ type: 'contact-added' }),
        (err: unknown) => console.error('pipeline-peer: contacts.add failed:', err),
      );
    }
  });
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.send({ type: 'ready', onion: identity.onion, echoPort } satisfies PeerReady);
}

main().catch((err) => {
  console.error('pipeline-peer:', err);
  process.exit(1);
});
