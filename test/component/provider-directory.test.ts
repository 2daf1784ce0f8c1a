/**
 * The provider-directory client (src/registry/directory.ts) through real tronweb-compatible HTTP
 * against the dev chain: listing a node with its binding, verified reads, a forged listing refused,
 * TRX and TRC-20 payments (the allowance raised by the client), the price guard, leaving and the
 * stake's withdrawal delay.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { deployContract, loadArtifact } from '../../src/contract/index.js';
import { cryptoReady, generateIdentity, subscriberTag, type Identity } from '../../src/crypto/index.js';
import { RegistryError, createProviderDirectory, type ProviderDirectory, type ProviderTerms } from '../../src/registry/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const MIN_STAKE = 100_000_000n;
const DELAY = 3 * 24 * 3600;
let chain: DevChain;
let directory: string;
let token: string;
const clients: ProviderDirectory[] = [];
let prov1: Identity;
let prov2: Identity;
let user: Identity;

function client(account?: number): ProviderDirectory {
  const c = createProviderDirectory({
    fullHost: chain.url, contractAddress: directory, pollIntervalMs: 20,
    ...(account === undefined ? {} : { tronPrivateKey: chain.accounts[account]!.privateKey }),
  });
  clients.push(c);
  return c;
}

/** The chain's time, ms (mines an empty block to read it). */
async function headTime(): Promise<number> {
  return (await chain.mine()).timestamp;
}

async function rejects(p: Promise<unknown>, code: string, reason?: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RegistryError, `expected RegistryError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (reason) assert.equal(err.reason, reason);
    return;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

before(async () => {
  await cryptoReady();
  prov1 = generateIdentity();
  prov2 = generateIdentity();
  user = generateIdentity();
  chain = await startDevChain({ accounts: 8 });
  const tw = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  const o = { tronWeb: tw, timeoutMs: 10_000, pollIntervalMs: 50 };
  directory = (await deployContract(o, 'ProviderDirectory', [Number(MIN_STAKE), DELAY])).address;
  token = (await deployContract(o, 'TestToken', ['Test USD', 'TUSD', 1_000_000_000_000])).address;
  const tok: any = tw.contract(loadArtifact('TestToken').abi as any, token);
  await tok.transfer(chain.accounts[3]!.hexAddress, 100_000_000).send({ feeLimit: 1e9 });
});

after(async () => {
  for (const c of clients) c.close();
  await chain?.close();
});

test('a node listed with its binding reads back verified, by owner, by identity and in the list; a forged binding is refused', async () => {
  const terms: ProviderTerms = { retentionDays: 14, quotaMB: 256, token: null, price: 5_000_000n };
  const p1 = client(1);
  await p1.register(prov1, terms, MIN_STAKE);
  const reader = client();
  const got = await reader.get(chain.accounts[1]!.address);
  assert.ok(got);
  assert.equal(got.onion, prov1.onion);
  assert.equal(got.status, 'listed');
  assert.deepEqual(got.terms, terms);
  assert.equal(got.stakeSun, MIN_STAKE);
  assert.equal((await reader.byIdentity(prov1.identityKey))?.owner, chain.accounts[1]!.address);
  assert.equal(await reader.byIdentity(prov2.identityKey), null);
  assert.equal(await reader.get(chain.accounts[5]!.address), null);

  // Account 2 lists prov2's key with a signature made for account 1: the binding names the wrong owner.
  const forgedSig = (await (async () => {
    const c: any = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[2]!.privateKey }).contract(loadArtifact('ProviderDirectory').abi as any, directory);
    const { signProviderBinding } = await import('../../src/crypto/index.js');
    const { parseTronAddress } = await import('../../src/registry/index.js');
    const sig = signProviderBinding(prov2, { owner: parseTronAddress(chain.accounts[1]!.hexAddress)!.bytes, chainId: BigInt(await c.chainId().call()), contract: parseTronAddress(directory)!.bytes });
    await c.register('0x' + Buffer.from(prov2.identityKey).toString('hex'), '0x' + Buffer.from(sig).toString('hex'), 14, 10, '410000000000000000000000000000000000000000', 0).send({ feeLimit: 1e9, callValue: Number(MIN_STAKE) });
    return sig;
  })());
  assert.equal(forgedSig.length, 64);
  await rejects(reader.get(chain.accounts[2]!.address), 'BAD_RECORD');
  const page = await reader.list();
  assert.deepEqual(page.providers.map((p) => p.onion), [prov1.onion]);
  assert.deepEqual(page.rejected.map((r) => r.owner), [chain.accounts[2]!.address]);
  assert.equal(page.total, 2);
  // A second listing of the same key is refused before any fee is spent.
  await rejects(client(4).register(prov1, terms, MIN_STAKE), 'NAME_TAKEN', 'KEY_TAKEN');
  await rejects(client(4).register(generateIdentity(), terms, MIN_STAKE - 1n), 'TX_FAILED', 'STAKE_TOO_LOW');
});

test('payments: TRX at the listed price, TRC-20 with the allowance raised by the client, both recorded under the salted tag', async () => {
  const tagKey = new Uint8Array(32).fill(9);
  const tag1 = subscriberTag(tagKey, prov1.identityKey);
  const payer = client(3);
  assert.equal(await payer.paidUntil(chain.accounts[1]!.address, tag1), 0);
  const paid = await payer.pay(chain.accounts[1]!.address, tag1, 2);
  assert.equal(paid.amount, 10_000_000n);
  assert.equal(paid.token, null);
  const head = await headTime();
  assert.ok(Math.abs(paid.paidUntil - (head + 60 * 24 * 3600 * 1000)) < 10_000, `${paid.paidUntil} vs ${head}`);
  assert.equal(await payer.paidUntil(chain.accounts[1]!.address, tag1), paid.paidUntil);
  // The price guard: a provider that asks more than the user agreed gets nothing.
  await rejects(payer.pay(chain.accounts[1]!.address, tag1, 1, { maxPrice: 4_000_000n }), 'PRICE_CHANGED');

  const tokenProvider = client(6);
  await tokenProvider.register(user, { retentionDays: 30, quotaMB: 50, token: token as never, price: 3_000_000n }, MIN_STAKE);
  const tag2 = subscriberTag(tagKey, user.identityKey);
  assert.notDeepEqual(tag1, tag2, 'one subscriber has unlinkable tags at two providers');
  const tp = await payer.pay(chain.accounts[6]!.address, tag2, 3);
  assert.equal(tp.amount, 9_000_000n);
  assert.equal(tp.token, token);
  assert.ok(tp.paidUntil > (await headTime()));
  const tok: any = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey }).contract(loadArtifact('TestToken').abi as any, token);
  assert.equal(BigInt(await tok.balanceOf(chain.accounts[6]!.hexAddress).call()), 9_000_000n);
  // A client without a key cannot pay.
  await rejects(client().pay(chain.accounts[1]!.address, tag1, 1), 'NO_KEY');
});

test('leaving: deregister, early withdraw refused with STAKE_LOCKED, withdraw after the delay', async () => {
  const p1 = client(1);
  await p1.deregister();
  const reader = client();
  const gone = await reader.get(chain.accounts[1]!.address);
  assert.equal(gone?.status, 'leaving');
  assert.ok(gone!.withdrawableAt! > (await headTime()));
  assert.ok(!(await reader.list()).providers.some((p) => p.onion === prov1.onion));
  assert.ok((await reader.list({ includeLeaving: true })).providers.some((p) => p.onion === prov1.onion));
  await rejects(p1.withdraw(), 'TX_FAILED', 'STAKE_LOCKED');
  await rejects(client(3).pay(chain.accounts[1]!.address, new Uint8Array(32), 1), 'NOT_FOUND');
  await chain.increaseTime(DELAY + 1);
  await p1.withdraw();
  assert.equal(await reader.get(chain.accounts[1]!.address), null);
});
