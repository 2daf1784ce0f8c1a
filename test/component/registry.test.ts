/**
 * The registry client against the dev chain through real tronweb: register and resolve, the checks
 * that reject a record (BAD_RECORD), every write error, the cache, key rotation and the pinning
 * verdicts, endpoint failure and disagreement, and resolve latency.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { TronWeb } from 'tronweb';
import { ManualClock } from '../../src/clock.js';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { deployRegistry, loadRegistryArtifact } from '../../src/contract/index.js';
import {
  cryptoReady, generateIdentity, onionAddress, signRegistryRecord, signRotation, withNewEncryptionKey, type Identity,
} from '../../src/crypto/index.js';
import { toHex } from '../../src/bytes.js';
import {
  RegistryError, comparePin, createTronRegistry, parseTronAddress, type IdentityRegistry, type TronRegistryOptions,
} from '../../src/registry/index.js';
import { calls, commitmentOf } from '../../src/registry/abi.js';
import { TronNode } from '../../src/registry/tron.js';
import { createLogger } from '../../src/log.js';

let chain: DevChain;
let contract: string;
const clients: IdentityRegistry[] = [];
const chains: DevChain[] = [];

const alice = generateIdentityLater();
const bob = generateIdentityLater();

// Identities need sodium, which is ready only after cryptoReady(); build them lazily.
function generateIdentityLater(): { get(): Identity; set(id: Identity): void } {
  let id: Identity | undefined;
  return { get: () => (id ??= generateIdentity()), set: (v) => void (id = v) };
}

function client(opts: Partial<TronRegistryOptions> & { account?: number } = {}): IdentityRegistry {
  const { account, ...rest } = opts;
  const c = createTronRegistry({
    fullHost: chain.url,
    contractAddress: contract,
    tronPrivateKey: account === undefined ? undefined : chain.accounts[account]!.privateKey,
    pollIntervalMs: 50,
    ...rest,
  });
  clients.push(c);
  return c;
}

async function rejects(p: Promise<unknown>, code: string): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RegistryError, `expected RegistryError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

async function deploy(c: DevChain, minCommitmentAge = 0): Promise<string> {
  const tronWeb = new TronWeb({ fullHost: c.url, privateKey: c.accounts[0]!.privateKey });
  const d = await deployRegistry({ tronWeb, minCommitmentAge, maxCommitmentAge: 86_400, timeoutMs: 10_000, pollIntervalMs: 20 });
  return d.address;
}

before(async () => {
  await cryptoReady();
  chain = await startDevChain({ port: 0, accounts: 5 });
  chains.push(chain);
  contract = await deploy(chain);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(chains.map((c) => c.close()));
});

test('register alice and bob from separate accounts; resolve both by name and by owner', async () => {
  const stages: string[] = [];
  const a = client({ account: 1 });
  const mbox = generateIdentity().onion;
  const r = await a.register(alice.get(), '  Alice ', { mailboxes: [mbox], onProgress: (p) => stages.push(p.stage) });
  assert.equal(r.version, 1);
  assert.match(r.txId, /^[0-9a-f]{64}$/);
  assert.deepEqual(stages, ['committed', 'registered']);
  await client({ account: 2 }).register(bob.get(), 'bob');

  const reader = client();
  for (const [name, id, account] of [['alice', alice.get(), 1], ['bob', bob.get(), 2]] as const) {
    const byName = await reader.resolveName(name);
    assert.ok(byName, name);
    assert.equal(byName.name, name);
    assert.equal(byName.onion, onionAddress(byName.identityKey));
    assert.equal(byName.onion, id.onion);
    assert.equal(toHex(byName.encryptionKey), toHex(id.encryptionKey));
    assert.equal(byName.owner, chain.accounts[account]!.address);
    assert.equal(byName.ownerHex, chain.accounts[account]!.hexAddress.toLowerCase());
    assert.equal(byName.chainId, BigInt(chain.chainId));
    assert.equal(byName.contract, contract);
    const byOwner = await reader.resolveOwner(chain.accounts[account]!.address, { fresh: true });
    assert.ok(byOwner);
    assert.equal(byOwner.name, name);
    assert.equal(byOwner.onion, id.onion);
  }
  assert.deepEqual((await reader.resolveName('alice'))!.mailboxes, [mbox]);
  assert.equal(await reader.resolveName('nobody'), null);
  assert.equal(await reader.resolveOwner(chain.accounts[3]!.address), null);
  await rejects(reader.resolveName('-bad-'), 'NAME_INVALID');
});

test('a record whose signature covers other data is rejected with BAD_RECORD and not cached', async () => {
  // Mallory (account 4) writes straight through the contract with tronweb, signing another name.
  const mallory = chain.accounts[4]!;
  const tronWeb = new TronWeb({ fullHost: chain.url, privateKey: mallory.privateKey });
  const c = tronWeb.contract(loadRegistryArtifact().abi as never, contract);
  const id = generateIdentity();
  const secret = new Uint8Array(32).fill(4);
  const owner = parseTronAddress(mallory.address)!;
  const chainId = BigInt(chain.chainId);
  const sig = signRegistryRecord(id, { name: 'someone-else', owner: owner.bytes, mailboxes: '', version: 1, chainId, contract: parseTronAddress(contract)!.bytes });
  const commitTx = await c.commit(`0x${toHex(commitmentOf('mallory', owner.bytes, secret))}`).send({ feeLimit: 1e9 });
  assert.equal(typeof commitTx, 'string');
  await c.register('mallory', `0x${toHex(id.identityKey)}`, `0x${toHex(id.encryptionKey)}`, '', `0x${toHex(sig)}`, `0x${toHex(secret)}`).send({ feeLimit: 1e9 });

  const reader = client();
  const err = await rejects(reader.resolveName('mallory'), 'BAD_RECORD');
  assert.match(err.message, /signature/);
  await rejects(reader.resolveOwner(mallory.address), 'BAD_RECORD');
  await rejects(reader.resolveName('mallory'), 'BAD_RECORD'); // still rejected: nothing was cached
});

test('write errors: NAME_TAKEN, ALREADY_REGISTERED, NOT_OWNER, NOT_FOUND, NO_KEY, UNFUNDED', async () => {
  const carol = client({ account: 3 });
  await rejects(carol.register(generateIdentity(), 'alice'), 'NAME_TAKEN');
  await rejects(carol.update(generateIdentity(), { name: 'alice' }), 'NOT_OWNER');
  await rejects(carol.update(generateIdentity()), 'NOT_FOUND');
  await rejects(client({ account: 1 }).register(alice.get(), 'alice-two'), 'ALREADY_REGISTERED');
  await rejects(client().register(generateIdentity(), 'nokey'), 'NO_KEY');
  await rejects(client().update(generateIdentity()), 'NO_KEY');
  const pauper = client({ tronPrivateKey: toHex(crypto.getRandomValues(new Uint8Array(32))) });
  await rejects(pauper.register(generateIdentity(), 'pauper'), 'UNFUNDED');
  // An account with a little TRX passes the balance check, but the node refuses to execute for it.
  const poorKey = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const poor = client({ tronPrivateKey: poorKey });
  const funder = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  const sent = await funder.trx.sendTransaction(poor.address!, 1);
  assert.equal(sent.result, true);
  await rejects(poor.register(generateIdentity(), 'poor'), 'UNFUNDED');
  // Nothing was written by the failures above.
  assert.equal(await client().resolveName('pauper'), null);
  assert.equal((await client().resolveName('alice'))!.owner, chain.accounts[1]!.address);
});

test('racing registrations of one name: one wins, the other gets the decoded revert NAME_TAKEN', async () => {
  const results = await Promise.allSettled([
    client({ account: 0 }).register(generateIdentity(), 'race'),
    client({ account: 3 }).register(generateIdentity(), 'race'),
  ]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  assert.ok(lost[0]!.reason instanceof RegistryError);
  assert.equal(lost[0]!.reason.code, 'NAME_TAKEN');

  // A mined transaction that reverts: the reason comes out of contractResult, not tronweb's text.
  const node = new TronNode({ host: chain.url, timeoutMs: 5000 });
  const id = generateIdentity();
  const txId = await node.send(parseTronAddress(contract)!.hex, calls.register({
    name: 'no-commit', identityKey: id.identityKey, encryptionKey: id.encryptionKey, mailboxes: '', signature: new Uint8Array(64), secret: new Uint8Array(32),
  }), chain.accounts[3]!.privateKey, 1e9);
  const info = await node.txInfo(txId);
  assert.ok(info);
  assert.equal(info.success, false);
  assert.equal(info.reason, 'NO_COMMITMENT');
});

test('no TRON private key reaches the logs', async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (l: string) => void lines.push(l) } });
  const key = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const c = client({ tronPrivateKey: key, logger });
  const funder = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  assert.equal((await funder.trx.sendTransaction(c.address!, 1_000_000_000)).result, true);
  await c.register(generateIdentity(), 'logged');
  await c.update(generateIdentity());
  await rejects(c.register(generateIdentity(), 'logged-again'), 'ALREADY_REGISTERED');
  await c.resolveName('mallory', { fresh: true }).catch(() => null); // logs a rejected record
  assert.ok(lines.length >= 3, `only ${lines.length} log lines`);
  const all = lines.join('');
  assert.ok(!all.includes(key) && !all.includes(key.toUpperCase()), 'the private key was logged');
});

test('update bumps the version; a cached record is replaced after the TTL or invalidate()', async () => {
  const clock = new ManualClock(Date.now());
  const reader = client({ clock, cacheTtlMs: 60_000 });
  const v1 = await reader.resolveName('alice');
  assert.equal(v1!.version, 1);

  const rekeyed = withNewEncryptionKey(alice.get());
  const res = await client({ account: 1 }).update(rekeyed);
  assert.equal(res.version, 2);

  const cached = await reader.resolveName('alice');
  assert.equal(cached!.version, 1, 'served from cache within the TTL');
  clock.advance(60_000);
  const fresh = await reader.resolveName('alice');
  assert.equal(fresh!.version, 2);
  assert.equal(toHex(fresh!.encryptionKey), toHex(rekeyed.encryptionKey));
  assert.deepEqual(fresh!.mailboxes, v1!.mailboxes, 'mailboxes kept when not given');
  assert.equal(comparePin({ identityKey: v1!.identityKey, encryptionKey: v1!.encryptionKey, version: 1 }, fresh!).kind, 'updated');

  await client({ account: 1 }).update(rekeyed, { mailboxes: [] });
  assert.equal((await reader.resolveName('alice'))!.version, 2, 'still cached');
  reader.invalidate('Alice');
  const v3 = await reader.resolveName('alice');
  assert.equal(v3!.version, 3);
  assert.deepEqual(v3!.mailboxes, []);
  assert.equal((await reader.resolveOwner(chain.accounts[1]!.address))!.version, 3, 'owner entry refreshed too');
  alice.set(rekeyed);
});

test('key rotation: with a statement signed by the pinned key → rotated; without → conflict', async () => {
  const reader = client({ cacheTtlMs: 0 });
  const before = (await reader.resolveName('bob'))!;
  const pin = { identityKey: before.identityKey, encryptionKey: before.encryptionKey, version: before.version };
  const bobWriter = client({ account: 2 });

  const bob2 = generateIdentity();
  await bobWriter.update(bob2, { rotation: signRotation(bob.get(), bob2, Date.now()) });
  const rotatedRec = (await reader.resolveName('bob'))!;
  assert.equal(rotatedRec.onion, bob2.onion);
  const verdict = comparePin(pin, rotatedRec);
  assert.equal(verdict.kind, 'rotated');

  // The statement stays published while it leads to the current key (an encryption-key change keeps it).
  const bob2b = withNewEncryptionKey(bob2);
  await bobWriter.update(bob2b);
  assert.equal(comparePin(pin, (await reader.resolveName('bob'))!).kind, 'rotated');

  // A new identity key without a statement: a conflict for anyone pinned to either earlier key.
  const pin2 = { identityKey: bob2b.identityKey, encryptionKey: bob2b.encryptionKey, version: rotatedRec.version + 1 };
  const bob3 = generateIdentity();
  await bobWriter.update(bob3);
  const bare = (await reader.resolveName('bob'))!;
  assert.equal(bare.rotation, null, 'a statement for an older key is dropped');
  assert.equal(comparePin(pin2, bare).kind, 'conflict');
  assert.equal(comparePin(pin, bare).kind, 'conflict');
  // A statement that the pinned key never signed is a conflict as well.
  const mallory = generateIdentity();
  const bob4 = generateIdentity();
  await bobWriter.update(bob4, { rotation: signRotation(mallory, bob4, Date.now()) });
  assert.equal(comparePin({ identityKey: bob3.identityKey, encryptionKey: bob3.encryptionKey, version: bare.version }, (await reader.resolveName('bob'))!).kind, 'conflict');
});

test('register waits until the commitment is minCommitmentAge old', async () => {
  const aged = await deploy(chain, 2);
  const c = client({ account: 3, contractAddress: aged });
  const stages: string[] = [];
  const started = Date.now();
  const r = await c.register(generateIdentity(), 'patient', { onProgress: (p) => stages.push(p.stage) });
  const took = Date.now() - started;
  assert.equal(r.version, 1);
  assert.deepEqual(stages, ['committed', 'waiting', 'registered']);
  assert.ok(took >= 1900 && took < 10_000, `took ${took} ms`);
  assert.equal((await c.resolveName('patient'))!.owner, chain.accounts[3]!.address);

  const ac = new AbortController();
  const p = client({ account: 4, contractAddress: aged }).register(generateIdentity(), 'impatient', { signal: ac.signal, onProgress: (s) => s.stage === 'waiting' && ac.abort() });
  await rejects(p, 'ABORTED');
});

test('an unreachable fullHost fails fast with UNREACHABLE naming the host', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const host = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const err = await rejects(client({ fullHost: host }).resolveName('alice'), 'UNREACHABLE');
  assert.ok(err.message.includes(host), err.message);
  assert.ok(Date.now() - started < 2000);
  // One good host and one dead one: the read cannot be cross-checked.
  await rejects(client({ fullHost: undefined, fullHosts: [chain.url, host] }).resolveName('alice'), 'UNREACHABLE');
  // Aborted before sending.
  await rejects(client().resolveName('alice', { signal: AbortSignal.abort() }), 'ABORTED');
});

test('two dev chains as two fullHosts: agree on the same state, ENDPOINTS_DISAGREE on different state', async () => {
  // Twin chains on one stopped clock have the same genesis, so the same deploy lands at the same address.
  const clock = new ManualClock(Date.now());
  const [x, y] = await Promise.all([startDevChain({ port: 0, accounts: 3, clock }), startDevChain({ port: 0, accounts: 3, clock })]);
  chains.push(x, y);
  const [cx, cy] = [await deploy(x), await deploy(y)];
  assert.equal(cx, cy, 'twin deployments share an address');
  const both = client({ fullHost: undefined, fullHosts: [x.url, y.url], contractAddress: cx });
  assert.equal(await both.resolveName('carol'), null, 'both empty: they agree');

  const carol = generateIdentity();
  await client({ fullHost: x.url, contractAddress: cx, tronPrivateKey: x.accounts[1]!.privateKey }).register(carol, 'carol');
  const err = await rejects(both.resolveName('carol'), 'ENDPOINTS_DISAGREE');
  assert.ok(err.message.includes(x.url) && err.message.includes(y.url), err.message);
  await client({ fullHost: y.url, contractAddress: cy, tronPrivateKey: y.accounts[1]!.privateKey }).register(carol, 'carol');
  const agreed = await both.resolveName('carol');
  assert.equal(agreed!.onion, carol.onion, 'same record on both once both hold it');
});

test('latency: uncached and cached resolveName (median of 50)', async () => {
  const reader = client();
  await reader.resolveName('alice'); // warm-up (chain id, connections)
  const median = (xs: number[]) => xs.sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
  const uncached: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await reader.resolveName('alice', { fresh: true });
    uncached.push(performance.now() - t);
  }
  const cached: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await reader.resolveName('alice');
    cached.push(performance.now() - t);
  }
  const u = median(uncached);
  const c = median(cached);
  console.log(`# resolveName median over 50: uncached ${u.toFixed(2)} ms, cached ${(c * 1000).toFixed(1)} µs`);
  assert.ok(c < u);
});
