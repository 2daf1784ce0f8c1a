/**
 * ProviderDirectory's rules, through real tronweb against the dev chain: listing with a stake, the
 * withdrawal delay, TRX and TRC-20 payments (exact amounts only, the right currency only) and the
 * paid-until record. Failures are asserted on the decoded revert reason of the mined transaction.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { decodeRevertReason, deployContract, loadArtifact } from '../../src/contract/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const FEE = 1_000_000_000;
const MIN_STAKE = 100_000_000; // 100 TRX
const DELAY = 7 * 24 * 3600;
const PERIOD = 30 * 24 * 3600;
const PRICE_TRX = 5_000_000; // 5 TRX per 30 days
const PRICE_TOKEN = 2_000_000; // 2 tokens (6 decimals)
const K = (b: number) => '0x' + b.toString(16).padStart(2, '0').repeat(32);
const SIG = '0x' + 'cd'.repeat(64);
const ZERO = '410000000000000000000000000000000000000000';

let chain: DevChain;
let tw: TronWeb[];
let dir: any[];
let tok: any[];
let directory: string;
let token: string;
let otherToken: string;
let snap: number;

interface Outcome {
  ok: boolean;
  reason: string | undefined;
}

async function run(contract: any, tronWeb: TronWeb, method: string, args: unknown[], callValue = 0): Promise<Outcome> {
  const txid: string = await contract[method](...args).send({ feeLimit: FEE, callValue });
  const info: any = await tronWeb.trx.getTransactionInfo(txid);
  assert.ok(info.receipt, `no receipt for ${method}`);
  if (info.receipt.result === 'SUCCESS') return { ok: true, reason: undefined };
  return { ok: false, reason: decodeRevertReason(info.contractResult[0]) };
}

const d = (who: number, method: string, args: unknown[], value = 0) => run(dir[who], tw[who]!, method, args, value);
const t = (who: number, method: string, args: unknown[]) => run(tok[who], tw[who]!, method, args);
const hexOf = (who: number) => chain.accounts[who]!.hexAddress;
const balance = async (who: number) => BigInt(await tw[0]!.trx.getBalance(chain.accounts[who]!.address));

async function list(who: number, opts: { token?: string; price?: number; key?: number } = {}): Promise<Outcome> {
  return d(who, 'register', [K(opts.key ?? 10 + who), SIG, 14, 100, opts.token ?? ZERO, opts.price ?? PRICE_TRX], MIN_STAKE);
}

before(async () => {
  chain = await startDevChain();
  tw = chain.accounts.map((a) => new TronWeb({ fullHost: chain.url, privateKey: a.privateKey }));
  const o = { tronWeb: tw[0]!, timeoutMs: 10_000, pollIntervalMs: 50 };
  directory = (await deployContract(o, 'ProviderDirectory', [MIN_STAKE, DELAY])).address;
  token = (await deployContract(o, 'TestToken', ['Test USD', 'TUSD', 1_000_000_000_000])).address;
  otherToken = (await deployContract(o, 'TestToken', ['Other', 'OTH', 1_000_000_000_000])).address;
  dir = tw.map((x) => x.contract(loadArtifact('ProviderDirectory').abi as any, directory));
  tok = tw.map((x) => x.contract(loadArtifact('TestToken').abi as any, token));
  // Account 3 is the paying user: give it tokens of both kinds.
  assert.ok((await t(0, 'transfer', [hexOf(3), 50_000_000])).ok);
  const oth = tw[0]!.contract(loadArtifact('TestToken').abi as any, otherToken);
  assert.ok((await run(oth, tw[0]!, 'transfer', [hexOf(3), 50_000_000])).ok);
});

after(async () => {
  await chain?.close();
});

describe('ProviderDirectory', () => {
  beforeEach(async () => {
    snap = await chain.snapshot();
  });
  afterEach(async () => {
    await chain.revert(snap);
  });

  test('register locks a stake of at least minStake, with valid terms; one listing per account and per key', async () => {
    assert.equal((await d(1, 'register', [K(1), SIG, 14, 100, ZERO, PRICE_TRX], MIN_STAKE - 1)).reason, 'STAKE_TOO_LOW');
    assert.equal((await d(1, 'register', [K(1), SIG, 0, 100, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'BAD_RETENTION');
    assert.equal((await d(1, 'register', [K(1), SIG, 366, 100, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'BAD_RETENTION');
    assert.equal((await d(1, 'register', [K(1), SIG, 14, 0, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'BAD_QUOTA');
    assert.equal((await d(1, 'register', [K(1), '0x' + 'cd'.repeat(63), 14, 100, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'BAD_SIGNATURE');
    assert.equal((await d(1, 'register', [K(0), SIG, 14, 100, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'BAD_KEY');
    const before = await balance(1);
    assert.deepEqual(await d(1, 'register', [K(1), SIG, 14, 100, ZERO, PRICE_TRX], MIN_STAKE), { ok: true, reason: undefined });
    assert.ok(before - (await balance(1)) >= BigInt(MIN_STAKE), 'the stake left the account');
    assert.equal((await d(1, 'register', [K(2), SIG, 14, 100, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'ALREADY_LISTED');
    assert.equal((await d(2, 'register', [K(1), SIG, 14, 100, ZERO, PRICE_TRX], MIN_STAKE)).reason, 'KEY_TAKEN');
    const p = await dir[0].provider(hexOf(1)).call();
    assert.equal(Number(p.status), 1);
    assert.equal(p.identityKey, K(1));
    assert.equal(p.bindingSig, SIG);
    assert.equal(Number(p.retentionDays), 14);
    assert.equal(Number(p.quotaMB), 100);
    assert.equal(BigInt(p.price), BigInt(PRICE_TRX));
    assert.equal(BigInt(p.stake), BigInt(MIN_STAKE));
    assert.equal(Number(p.version), 1);
    assert.equal(await dir[0].ownerOfKey(K(1)).call(), hexOf(1));
  });

  test('paged list of owners; updateTerms bumps the version; addStake adds', async () => {
    assert.ok((await list(1)).ok);
    assert.ok((await list(2)).ok);
    assert.equal(Number(await dir[0].ownerCount().call()), 2);
    assert.deepEqual([...(await dir[0].ownersPage(0, 10).call())[0]], [hexOf(1), hexOf(2)]);
    assert.deepEqual([...(await dir[0].ownersPage(1, 1).call())[0]], [hexOf(2)]);
    assert.deepEqual([...(await dir[0].ownersPage(5, 10).call())[0]], []);
    assert.equal((await d(3, 'updateTerms', [30, 200, ZERO, 0])).reason, 'NOT_LISTED');
    assert.ok((await d(1, 'updateTerms', [30, 200, ZERO, 0])).ok);
    assert.ok((await d(1, 'addStake', [], 7)).ok);
    const p = await dir[0].provider(hexOf(1)).call();
    assert.equal(Number(p.retentionDays), 30);
    assert.equal(BigInt(p.price), 0n);
    assert.equal(BigInt(p.stake), BigInt(MIN_STAKE + 7));
    assert.equal(Number(p.version), 2);
  });

  test('the stake stays locked for the withdrawal delay after deregister; early withdraw is refused', async () => {
    assert.ok((await list(1)).ok);
    assert.equal((await d(1, 'withdraw', [])).reason, 'NOT_LEAVING');
    assert.ok((await d(1, 'deregister', [])).ok);
    const p = await dir[0].provider(hexOf(1)).call();
    assert.equal(Number(p.status), 2);
    assert.equal((await d(1, 'withdraw', [])).reason, 'STAKE_LOCKED');
    await chain.increaseTime(DELAY - 60);
    assert.equal((await d(1, 'withdraw', [])).reason, 'STAKE_LOCKED');
    // A deregistered provider takes no payments.
    assert.equal((await d(3, 'pay', [hexOf(1), K(0xaa), 1], PRICE_TRX)).reason, 'NOT_LISTED');
    await chain.increaseTime(120);
    const before = await balance(1);
    assert.ok((await d(1, 'withdraw', [])).ok);
    assert.ok((await balance(1)) - before > BigInt(MIN_STAKE) - 50_000_000n, 'the stake came back (less the fee)');
    assert.equal(Number((await dir[0].provider(hexOf(1)).call()).status), 0);
    // The key is free again, and the account may list again.
    assert.ok((await list(1)).ok);
  });

  test('TRX payment: exact price × periods to the provider; paid-until extends from the later of now and the old date', async () => {
    assert.ok((await list(1)).ok);
    const tag = K(0xaa);
    assert.equal((await d(3, 'pay', [hexOf(1), tag, 1], PRICE_TRX - 1)).reason, 'WRONG_AMOUNT');
    assert.equal((await d(3, 'pay', [hexOf(1), tag, 2], PRICE_TRX)).reason, 'WRONG_AMOUNT');
    assert.equal((await d(3, 'pay', [hexOf(1), tag, 0], 0)).reason, 'BAD_PERIODS');
    assert.equal((await d(3, 'pay', [hexOf(2), tag, 1], PRICE_TRX)).reason, 'NOT_LISTED');
    assert.equal((await d(3, 'payToken', [hexOf(1), tag, 1, token])).reason, 'WRONG_CURRENCY');
    const providerBefore = await balance(1);
    assert.ok((await d(3, 'pay', [hexOf(1), tag, 2], 2 * PRICE_TRX)).ok);
    assert.equal((await balance(1)) - providerBefore, BigInt(2 * PRICE_TRX));
    const head = Math.floor((await tw[0]!.trx.getCurrentBlock()).block_header.raw_data.timestamp / 1000);
    const until1 = Number(await dir[0].paidUntil(hexOf(1), tag).call());
    assert.ok(Math.abs(until1 - (head + 2 * PERIOD)) <= 2, `${until1} vs ${head + 2 * PERIOD}`);
    assert.ok((await d(3, 'pay', [hexOf(1), tag, 1], PRICE_TRX)).ok);
    assert.equal(Number(await dir[0].paidUntil(hexOf(1), tag).call()), until1 + PERIOD);
    assert.equal(Number(await dir[0].paidUntil(hexOf(1), K(0xbb)).call()), 0, 'another tag is unpaid');
  });

  test('TRC-20 payment: approve + transferFrom of the exact amount in the provider’s token only', async () => {
    assert.ok((await list(2, { token, price: PRICE_TOKEN })).ok);
    const tag = K(0xcc);
    assert.equal((await d(3, 'pay', [hexOf(2), tag, 1], PRICE_TOKEN)).reason, 'WRONG_CURRENCY');
    assert.equal((await d(3, 'payToken', [hexOf(2), tag, 1, otherToken])).reason, 'WRONG_CURRENCY');
    // No allowance, then too small an allowance: the token refuses, the payment reverts whole.
    assert.equal((await d(3, 'payToken', [hexOf(2), tag, 1, token])).reason, 'TOKEN_TRANSFER_FAILED');
    assert.ok((await t(3, 'approve', [directory, PRICE_TOKEN - 1])).ok);
    assert.equal((await d(3, 'payToken', [hexOf(2), tag, 1, token])).reason, 'TOKEN_TRANSFER_FAILED');
    assert.equal(Number(await dir[0].paidUntil(hexOf(2), tag).call()), 0);
    assert.ok((await t(3, 'approve', [directory, 3 * PRICE_TOKEN])).ok);
    const before = BigInt(await tok[0].balanceOf(hexOf(2)).call());
    assert.ok((await d(3, 'payToken', [hexOf(2), tag, 3, token])).ok);
    assert.equal(BigInt(await tok[0].balanceOf(hexOf(2)).call()) - before, BigInt(3 * PRICE_TOKEN));
    assert.ok(Number(await dir[0].paidUntil(hexOf(2), tag).call()) > 0);
  });

  test('a free provider takes no payment', async () => {
    assert.ok((await list(1, { price: 0 })).ok);
    assert.equal((await d(3, 'pay', [hexOf(1), K(1), 1], 0)).reason, 'FREE_PROVIDER');
  });
});
