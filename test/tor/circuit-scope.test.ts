/**
 * Per-circuit limits through real tor (issue 15 items 3 and 4): our onion published as a configured
 * service with HiddenServiceExportCircuitID, in front of a listener that reads tor's PROXY line.
 * Connections on one circuit (one SOCKS isolation key) share a scope, so a reconnect does not reset
 * its counters; another circuit is another scope; a circuit that opens more streams at once than
 * HiddenServiceMaxStreams is closed by tor; and the secret key file is gone once tor has it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cryptoReady, generateIdentity, onionKeyBlob } from '../../src/crypto/index.js';
import { resolveLimits } from '../../src/limits.js';
import { TorSocksAgent, publishOnion } from '../../src/tor/index.js';
import { createWsListener, dialWs, type MessageChannel } from '../../src/transport/index.js';
import { retryUntil, withTor } from '../fixtures/tor.js';

test('configured onion: tor names the circuit of every stream; scopes follow circuits; MaxStreams closes a greedy circuit', { timeout: 300_000 }, async (t) => {
  await cryptoReady();
  const limits = resolveLimits({ maxStreamsPerCircuit: 4 });
  const host = await withTor(t);
  const client = await withTor(t);
  const scopes: string[] = [];
  let listenerRef: Awaited<ReturnType<typeof createWsListener>> | undefined;
  const accepted: MessageChannel[] = [];
  const listener = await createWsListener({
    limits, proxyProtocol: true, closeGraceMs: 200,
    onChannel: (ch) => {
      accepted.push(ch);
      scopes.push(listenerRef!.peerOf(ch)!.scope);
      ch.on('message', (m) => ch.send(m));
    },
  });
  listenerRef = listener;
  t.after(() => listener.close());
  const identity = generateIdentity();
  const serviceDir = await mkdtemp(join(tmpdir(), 'onionpost-hs-'));
  t.after(() => rm(serviceDir, { recursive: true, force: true }));
  const pub = await publishOnion(host.control, {
    keyBlob: onionKeyBlob(identity.seed), target: `127.0.0.1:${listener.port}`, pow: host.features.pow, serviceDir,
    maxStreams: limits.maxStreamsPerCircuit, maxStreamsCloseCircuit: true, expectedServiceId: identity.onion, uploadTimeoutMs: 60_000,
  });
  assert.equal(`${pub.serviceId}.onion`, identity.onion, 'the configured service has the identity key');
  assert.deepEqual(readdirSync(serviceDir).filter((f) => f.includes('secret')), [], 'the secret key file is gone once tor has read it');
  await pub.uploaded;

  const url = `ws://${identity.onion}/`;
  const agents: TorSocksAgent[] = [];
  const agent = (isolation: string) => {
    const a = new TorSocksAgent({ socksPort: client.socksPort, isolation, keepAlive: false, connectTimeoutMs: 30_000 });
    agents.push(a);
    return a;
  };
  t.after(() => agents.forEach((a) => a.destroy()));
  const dial = (a: TorSocksAgent) => dialWs({ url, agent: a, limits, timeoutMs: 30_000 });

  // Two connections, one after the other, on the same isolation key: one circuit, one scope.
  const peerA = agent('peer-a');
  const { value: first } = await retryUntil(() => dial(peerA), { deadlineMs: 60_000, pauseMs: 1_000 });
  first.send(Uint8Array.of(1));
  await new Promise<void>((r) => first.once('message', () => r()));
  await first.close();
  const second = await dial(peerA);
  await second.close();
  const other = await dial(agent('peer-b'));
  await other.close();
  assert.equal(scopes.length, 3);
  assert.match(scopes[0]!, /^circuit:\d+$/, `scope named by tor's circuit id (${scopes[0]})`);
  assert.equal(scopes[1], scopes[0], 'a reconnect on the same circuit keeps its scope (and its counters)');
  assert.notEqual(scopes[2], scopes[0], 'another circuit is another scope');

  // More concurrent streams than MaxStreams on one circuit: tor closes the circuit, and with it
  // the streams already open on it.
  const greedy = agent('greedy');
  const held: MessageChannel[] = [];
  for (let i = 0; i < limits.maxStreamsPerCircuit; i++) held.push(await dial(greedy));
  const over = await dial(greedy).then((c) => c, (e: unknown) => e);
  const ended = await Promise.all(held.map((c) => (c.state === 'closed' ? Promise.resolve(true) : new Promise<boolean>((r) => {
    const timer = setTimeout(() => r(false), 20_000);
    c.once('close', () => {
      clearTimeout(timer);
      r(true);
    });
  }))));
  t.diagnostic(`stream ${limits.maxStreamsPerCircuit + 1}: ${over instanceof Error ? (over as Error).message : 'opened'}; held streams closed: ${ended.filter(Boolean).length}/${held.length}`);
  assert.ok(ended.every(Boolean), 'the circuit that exceeded MaxStreams was closed, its streams with it');
  if (!(over instanceof Error)) (over as MessageChannel).destroy();
  assert.ok(existsSync(serviceDir));
});
