/**
 * IdentityRegistry's rules, through real tronweb against the dev chain. Failures are asserted on the
 * revert reason decoded from the mined transaction's contractResult (or a constant call's
 * constant_result), not merely on "it threw".
 */
import { after, before, beforeEach, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TronWeb, utils } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { decodeRevertReason, deployRegistry, isValidRegistryName, loadRegistryArtifact, registryCommitment } from '../../src/contract/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const FEE = 1_000_000_000;
const MIN_AGE = 60;
const MAX_AGE = 3_600;
const K = (b: number) => '0x' + b.toString(16).padStart(2, '0').repeat(32);
const SIG = '0x' + 'ab'.repeat(64);
const ZERO_ADDR = '41' + '0'.repeat(40);

let chain: DevChain;
let tw: TronWeb[];
let c: any[];
let registry: string;
let snap: number;

interface Outcome {
  ok: boolean;
  reason: string | undefined;
}

async function send(who: number, method: string, ...args: unknown[]): Promise<Outcome> {
  const txid: string = await c[who]![method](...args).send({ feeLimit: FEE });
  const info: any = await tw[who]!.trx.getTransactionInfo(txid);
  assert.ok(info.receipt, `no receipt for ${method}`);
  if (info.receipt.result === 'SUCCESS') return { ok: true, reason: undefined };
  assert.equal(info.result, 'FAILED');
  assert.equal(info.receipt.result, 'REVERT');
  assert.equal(Buffer.from(info.resMessage, 'hex').toString(), 'REVERT opcode executed');
  return { ok: false, reason: decodeRevertReason(info.contractResult[0]) };
}

function secretOf(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

function hex(b: Uint8Array): string {
  return '0x' + Buffer.from(b).toString('hex');
}

async function commit(who: number, name: string, secret: Uint8Array): Promise<void> {
  const r = await send(who, 'commit', registryCommitment(name, chain.accounts[who]!.hexAddress, secret));
  assert.ok(r.ok);
}

async function register(who: number, name: string, secret: Uint8Array, over: { id?: string; enc?: string; mb?: string; sig?: string } = {}): Promise<Outcome> {
  return send(who, 'register', name, over.id ?? K(1), over.enc ?? K(2), over.mb ?? 'mbx', over.sig ?? SIG, hex(secret));
}

/** Commits, waits out the minimum age, registers; asserts success. */
async function claim(who: number, name: string, seed = 1): Promise<void> {
  const s = secretOf(seed);
  await commit(who, name, s);
  await chain.increaseTime(MIN_AGE);
  const r = await register(who, name, s);
  assert.deepEqual(r, { ok: true, reason: undefined });
}

before(async () => {
  chain = await startDevChain();
  tw = chain.accounts.map((a) => new TronWeb({ fullHost: chain.url, privateKey: a.privateKey }));
  registry = (await deployRegistry({ tronWeb: tw[0]!, minCommitmentAge: MIN_AGE, maxCommitmentAge: MAX_AGE, timeoutMs: 10_000, pollIntervalMs: 50 })).address;
  const abi = loadRegistryArtifact().abi as any;
  c = tw.map((t) => t.contract(abi, registry));
});

after(async () => {
  await chain?.close();
});

describe('IdentityRegistry rules', () => {
  beforeEach(async () => {
    snap = await chain.snapshot();
  });
  afterEach(async () => {
    await chain.revert(snap);
  });

  test('register needs a commitment by the sender, aged between min and max', async () => {
    const s = secretOf(7);
    assert.equal((await register(0, 'alice', s)).reason, 'NO_COMMITMENT');
    await commit(0, 'alice', s);
    assert.equal((await register(0, 'alice', s)).reason, 'COMMITMENT_TOO_NEW');
    await chain.increaseTime(MIN_AGE - 5);
    assert.equal((await register(0, 'alice', s)).reason, 'COMMITMENT_TOO_NEW');
    // A wrong secret does not match the commitment.
    await chain.increaseTime(10);
    assert.equal((await register(0, 'alice', secretOf(8))).reason, 'NO_COMMITMENT');
    // Someone else cannot use alice's commitment: it is bound to the committer.
    assert.equal((await register(1, 'alice', s)).reason, 'NO_COMMITMENT');
    assert.deepEqual(await register(0, 'alice', s), { ok: true, reason: undefined });
    // The commitment is consumed.
    const r = await c[0].lookup('alice').call();
    assert.equal(r.owner, chain.accounts[0]!.hexAddress);
    assert.equal(r.version, 1n);
  });

  test('a commitment older than maxCommitmentAge is refused', async () => {
    const s = secretOf(2);
    await commit(0, 'bob', s);
    await chain.increaseTime(MAX_AGE + 1);
    assert.equal((await register(0, 'bob', s)).reason, 'COMMITMENT_TOO_OLD');
  });

  test('a name taken by another owner is refused; one record per owner', async () => {
    await claim(0, 'alice');
    const s = secretOf(3);
    await commit(1, 'alice', s);
    await chain.increaseTime(MIN_AGE);
    assert.equal((await register(1, 'alice', s)).reason, 'NAME_TAKEN');

    // The same refusal as a constant call: java-tron's generic message, the reason in constant_result.
    const dry: any = await tw[1]!.transactionBuilder.triggerConstantContract(
      registry, 'register(string,bytes32,bytes32,string,bytes,bytes32)', {},
      [
        { type: 'string', value: 'alice' }, { type: 'bytes32', value: K(1) }, { type: 'bytes32', value: K(2) },
        { type: 'string', value: '' }, { type: 'bytes', value: SIG }, { type: 'bytes32', value: hex(s) },
      ],
      chain.accounts[1]!.hexAddress,
    ).catch((e: unknown) => e);
    // tronweb throws result.message before looking at constant_result, exactly as on mainnet.
    assert.ok(dry instanceof Error);
    assert.equal(dry.message, 'REVERT opcode executed');
    const raw: any = await (await fetch(`${chain.url}/wallet/triggerconstantcontract`, {
      method: 'POST',
      body: JSON.stringify({
        owner_address: chain.accounts[1]!.hexAddress,
        contract_address: TronWeb.address.toHex(registry),
        function_selector: 'register(string,bytes32,bytes32,string,bytes,bytes32)',
        parameter: encodeRegister('alice', hex(s)),
      }),
    })).json();
    assert.equal(Buffer.from(raw.result.message, 'hex').toString(), 'REVERT opcode executed');
    assert.equal(decodeRevertReason(raw.constant_result[0]), 'NAME_TAKEN');

    // Account 0 already has a record: a second name is refused.
    const s2 = secretOf(4);
    await commit(0, 'alice2', s2);
    await chain.increaseTime(MIN_AGE);
    assert.equal((await register(0, 'alice2', s2)).reason, 'ALREADY_REGISTERED');
  });

  test('field checks: zero keys, signature length, mailboxes cap', async () => {
    const s = secretOf(5);
    await commit(0, 'alice', s);
    await chain.increaseTime(MIN_AGE);
    assert.equal((await register(0, 'alice', s, { id: K(0) })).reason, 'BAD_KEY');
    assert.equal((await register(0, 'alice', s, { enc: K(0) })).reason, 'BAD_KEY');
    assert.equal((await register(0, 'alice', s, { sig: '0x' + 'ab'.repeat(65) })).reason, 'SIG_LENGTH');
    assert.equal((await register(0, 'alice', s, { mb: 'x'.repeat(1025) })).reason, 'MAILBOXES_TOO_LONG');
    assert.deepEqual(await register(0, 'alice', s, { mb: 'x'.repeat(1024) }), { ok: true, reason: undefined });
  });

  test('invalid names are refused by the contract, in agreement with isValidRegistryName', async () => {
    for (const name of ['a', 'alice', 'a-b', 'x'.repeat(64), '0-9', '', '-a', 'a-', 'Alice', 'a_b', 'a.b', 'x'.repeat(65), 'é']) {
      assert.equal(await c[0].isValidName(name).call(), isValidRegistryName(name), JSON.stringify(name));
    }
    for (const name of ['Alice', '-a', 'a b']) {
      const s = secretOf(6);
      await commit(0, name, s);
      await chain.increaseTime(MIN_AGE);
      assert.equal((await register(0, name, s)).reason, 'NAME_INVALID', name);
    }
  });

  test('update: owner only, version must be current + 1', async () => {
    await claim(0, 'alice');
    // Account 1 has no record: nothing of theirs to update, and no way to name alice's.
    assert.equal((await send(1, 'update', K(9), K(9), 'evil', 2, SIG)).reason, 'NO_RECORD');
    assert.equal((await send(0, 'update', K(3), K(4), 'new', 1, SIG)).reason, 'BAD_VERSION');
    assert.equal((await send(0, 'update', K(3), K(4), 'new', 3, SIG)).reason, 'BAD_VERSION');
    assert.equal((await send(0, 'update', K(0), K(4), 'new', 2, SIG)).reason, 'BAD_KEY');
    assert.ok((await send(0, 'update', K(3), K(4), 'new', 2, SIG)).ok);
    const r = await c[0].lookup('alice').call();
    assert.equal(r.identityKey, K(3));
    assert.equal(r.encryptionKey, K(4));
    assert.equal(r.mailboxes, 'new');
    assert.equal(r.version, 2n);
    assert.equal(r.owner, chain.accounts[0]!.hexAddress);
  });

  test('transfer: new owner must have no record; keys stay, version bumps, owner slots move', async () => {
    await claim(0, 'alice');
    await claim(1, 'bob', 2);
    assert.equal((await send(0, 'transfer', chain.accounts[1]!.address)).reason, 'ALREADY_REGISTERED');
    assert.equal((await send(2, 'transfer', chain.accounts[3]!.address)).reason, 'NO_RECORD');
    assert.ok((await send(0, 'transfer', chain.accounts[2]!.address)).ok);
    const r = await c[0].lookup('alice').call();
    assert.equal(r.owner, chain.accounts[2]!.hexAddress);
    assert.equal(r.identityKey, K(1));
    assert.equal(r.signature, SIG);
    assert.equal(r.version, 2n);
    assert.equal((await c[0].lookupByOwner(chain.accounts[0]!.address).call()).name, '');
    assert.equal((await c[0].lookupByOwner(chain.accounts[2]!.address).call()).name, 'alice');
    // The old owner lost control; the new one re-signs with version + 1.
    assert.equal((await send(0, 'update', K(5), K(5), '', 3, SIG)).reason, 'NO_RECORD');
    assert.ok((await send(2, 'update', K(5), K(6), 'm2', 3, SIG)).ok);
    assert.equal((await c[0].lookup('alice').call()).version, 3n);
  });

  test('release frees the name and the owner slot', async () => {
    await claim(0, 'alice');
    assert.equal((await send(1, 'release')).reason, 'NO_RECORD');
    assert.ok((await send(0, 'release')).ok);
    const r = await c[0].lookup('alice').call();
    assert.equal(r.owner, ZERO_ADDR);
    assert.equal(r.version, 0n);
    assert.equal((await c[0].lookupByOwner(chain.accounts[0]!.address).call()).name, '');
    // Both the name and account 0's slot are free again.
    await claim(1, 'alice', 3);
    await claim(0, 'zed', 4);
    assert.equal((await c[0].lookup('alice').call()).owner, chain.accounts[1]!.hexAddress);
    const ev: any = await tw[0]!.event.getEventsByContractAddress(registry, { eventName: 'Released' });
    assert.equal(ev.data.length, 1);
  });
});

function encodeRegister(name: string, secret: string): string {
  const coder = (utils as any).ethersUtils.AbiCoder.defaultAbiCoder();
  return String(coder.encode(['string', 'bytes32', 'bytes32', 'string', 'bytes', 'bytes32'], [name, K(1), K(2), '', SIG, secret])).slice(2);
}
