/**
 * The dev chain through real tronweb 6: transfers, deploys, the registry round trip, java-tron's
 * broadcast rejections, snapshots, and the latency figures later benchmarks quote.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { TronWeb, utils } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import {
  ContractError, decodeRevertReason, deployRegistry, loadRegistryArtifact, registryCommitment,
} from '../../src/contract/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const txUtils: any = (utils as any).transaction;
const cryptoUtils: any = (utils as any).crypto;

const FEE = 1_000_000_000;
const KEY1 = '0x' + '11'.repeat(32);
const KEY2 = '0x' + '22'.repeat(32);
const SIG = '0x' + '33'.repeat(64);

let chain: DevChain;
let tw: TronWeb[];
let registry: string;

function hexToUtf8(hex: string): string {
  return Buffer.from(hex, 'hex').toString('utf8');
}

async function info(t: TronWeb, txid: string): Promise<any> {
  // The dev chain answers at once; the bound only guards against a regression hanging the suite.
  for (let i = 0; i < 50; i++) {
    const r = await t.trx.getTransactionInfo(txid);
    if (r && Object.keys(r).length > 0) return r;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no transaction info for ${txid}`);
}

async function transferTx(from: number, to: number, sun: number): Promise<any> {
  return tw[from]!.transactionBuilder.sendTrx(chain.accounts[to]!.address, sun, chain.accounts[from]!.address);
}

function expectRejected(res: any, code: string): string {
  assert.equal(res.result, undefined, `expected ${code}, got ${JSON.stringify(res)}`);
  assert.equal(res.code, code);
  return hexToUtf8(String(res.message ?? ''));
}

before(async () => {
  chain = await startDevChain();
  tw = chain.accounts.map((a) => new TronWeb({ fullHost: chain.url, privateKey: a.privateKey }));
  const d = await deployRegistry({ tronWeb: tw[0]!, minCommitmentAge: 0, maxCommitmentAge: 86_400, timeoutMs: 10_000, pollIntervalMs: 50 });
  registry = d.address;
});

after(async () => {
  await chain?.close();
});

describe('dev chain through tronweb', () => {
  test('accounts are deterministic and prefunded', async () => {
    const again = await startDevChain({ accounts: 2 });
    try {
      assert.deepEqual(again.accounts.map((a) => a.address), chain.accounts.slice(0, 2).map((a) => a.address));
      assert.equal(again.accounts[0]!.hexAddress, TronWeb.address.toHex(again.accounts[0]!.address).toLowerCase());
      assert.equal(TronWeb.address.fromPrivateKey(again.accounts[1]!.privateKey), again.accounts[1]!.address);
    } finally {
      await again.close();
    }
    assert.equal(await tw[4]!.trx.getBalance(chain.accounts[4]!.address), 100_000_000_000);
    assert.equal(await tw[0]!.isConnected().then((c: any) => c.fullNode), true);
  });

  test('TRX transfer moves the amount and nothing else', async () => {
    const [a3, a4] = [chain.accounts[3]!, chain.accounts[4]!];
    const before3 = await tw[3]!.trx.getBalance(a3.address);
    const before4 = await tw[3]!.trx.getBalance(a4.address);
    const r: any = await tw[3]!.trx.sendTransaction(a4.address, 1_234_567);
    assert.equal(r.result, true);
    assert.equal(await tw[3]!.trx.getBalance(a3.address), before3 - 1_234_567);
    assert.equal(await tw[3]!.trx.getBalance(a4.address), before4 + 1_234_567);
    const tx: any = await tw[3]!.trx.getTransaction(r.txid ?? r.transaction.txID);
    assert.equal(tx.ret[0].contractRet, 'SUCCESS');
    const tooMuch: any = await tw[3]!.trx.sendTransaction(a4.address, 10 ** 15);
    assert.match(expectRejected(tooMuch, 'CONTRACT_VALIDATE_ERROR'), /balance is not sufficient/);
  });

  test('deployRegistry lands the contract where tronweb expects it, with a receipt', async () => {
    const c: any = await tw[1]!.contract().at(registry);
    assert.equal(Number(await c.chainId().call()), chain.chainId);
    assert.equal(Number(await c.minCommitmentAge().call()), 0);
    const hex = TronWeb.address.toHex(registry);
    const meta: any = await tw[1]!.trx.getContract(registry);
    assert.equal(meta.contract_address, hex.toLowerCase());
    const info2: any = await tw[1]!.trx.getContractInfo(registry);
    assert.ok(String(info2.runtimecode).length > 100);
  });

  test('commit → register → lookup → lookupByOwner round trip, with events', async () => {
    const c: any = tw[2]!.contract(loadRegistryArtifact().abi as any, registry);
    const owner = chain.accounts[2]!;
    const secret = new Uint8Array(32).fill(9);
    const commitTx = await c.commit(registryCommitment('carol', owner.hexAddress, secret)).send({ feeLimit: FEE });
    assert.equal((await info(tw[2]!, commitTx)).receipt.result, 'SUCCESS');
    const regTx = await c.register('carol', KEY1, KEY2, 'mbx.onion', SIG, '0x' + Buffer.from(secret).toString('hex')).send({ feeLimit: FEE });
    const ri = await info(tw[2]!, regTx);
    assert.equal(ri.receipt.result, 'SUCCESS', decodeRevertReason(ri.contractResult?.[0]));
    assert.ok(ri.fee > 0 && ri.receipt.energy_usage_total > 0);

    const r = await c.lookup('carol').call();
    assert.equal(r.owner, owner.hexAddress);
    assert.equal(r.identityKey, KEY1);
    assert.equal(r.encryptionKey, KEY2);
    assert.equal(r.mailboxes, 'mbx.onion');
    assert.equal(r.version, 1n);
    assert.equal(r.signature, SIG);
    const o = await c.lookupByOwner(owner.address).call();
    assert.equal(o.name, 'carol');
    assert.equal(o.version, 1n);
    const none = await c.lookup('nobody').call();
    assert.equal(none.owner, '41' + '0'.repeat(40));
    assert.equal(none.version, 0n);

    const ev: any = await tw[2]!.event.getEventsByTransactionID(regTx);
    assert.equal(ev.success, true);
    assert.equal(ev.data.length, 1);
    assert.equal(ev.data[0].event_name, 'Registered');
    assert.equal(ev.data[0].result.name, 'carol');
    assert.equal(ev.data[0].result.owner, '0x' + owner.hexAddress.slice(2));
    const byContract: any = await tw[2]!.event.getEventsByContractAddress(registry, { eventName: 'Registered' });
    assert.ok(byContract.data.some((e: any) => e.transaction_id === regTx));
  });

  test('a transaction of account 0 signed by account 1 is SIGERROR', async () => {
    const tx = await transferTx(0, 1, 1_000);
    const forged = cryptoUtils.signTransaction(chain.accounts[1]!.privateKey, tx);
    const res: any = await tw[0]!.trx.sendRawTransaction(forged);
    expectRejected(res, 'SIGERROR');
    const unsigned: any = await tw[0]!.trx.sendRawTransaction({ ...(await transferTx(0, 1, 1_001)), signature: [] });
    expectRejected(unsigned, 'SIGERROR');
  });

  test('an unknown or discarded ref block is TAPOS_ERROR', async () => {
    // A ref_block_hash no block has, re-encoded so txCheck still passes.
    const tx = await transferTx(0, 1, 2_000);
    tx.raw_data.ref_block_hash = 'deadbeefdeadbeef';
    const pb = txUtils.txJsonToPb(tx);
    tx.raw_data_hex = txUtils.txPbToRawDataHex(pb).replace(/^0x/, '');
    tx.txID = txUtils.txPbToTxID(pb).replace(/^0x/, '');
    const res: any = await tw[0]!.trx.sendRawTransaction(await tw[0]!.trx.sign(tx));
    assert.match(expectRejected(res, 'TAPOS_ERROR'), /Tapos/);

    // A block that a revert discarded.
    const snap = await chain.snapshot();
    await chain.mine();
    const stale = await tw[0]!.trx.sign(await transferTx(0, 1, 2_001));
    await chain.revert(snap);
    expectRejected(await tw[0]!.trx.sendRawTransaction(stale), 'TAPOS_ERROR');
  });

  test('broadcasting the same transaction twice is DUP_TRANSACTION_ERROR', async () => {
    const signed = await tw[0]!.trx.sign(await transferTx(0, 1, 3_000));
    const first: any = await tw[0]!.trx.sendRawTransaction(signed);
    assert.equal(first.result, true);
    expectRejected(await tw[0]!.trx.sendRawTransaction(signed), 'DUP_TRANSACTION_ERROR');
  });

  test('a transaction whose expiration the head block passed is TRANSACTION_EXPIRATION_ERROR', async () => {
    const snap = await chain.snapshot();
    try {
      const signed: any = await tw[0]!.trx.sign(await transferTx(0, 1, 4_000));
      const head = await chain.increaseTime(120);
      assert.ok(head.timestamp > signed.raw_data.expiration);
      const msg = expectRejected(await tw[0]!.trx.sendRawTransaction(signed), 'TRANSACTION_EXPIRATION_ERROR');
      assert.match(msg, /expiration/);
    } finally {
      await chain.revert(snap);
    }
  });

  test('a deploy from an unfunded account is a typed UNFUNDED error', async () => {
    const fresh: any = await TronWeb.createAccount();
    const poor = new TronWeb({ fullHost: chain.url, privateKey: fresh.privateKey });
    await assert.rejects(
      deployRegistry({ tronWeb: poor, minCommitmentAge: 0, maxCommitmentAge: 60, timeoutMs: 5_000 }),
      (e: unknown) => e instanceof ContractError && e.code === 'UNFUNDED' && e.nodeCode === 'CONTRACT_VALIDATE_ERROR',
    );
  });

  test('a deploy to a host that is down is a typed UNREACHABLE error', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const down = new TronWeb({ fullHost: `http://127.0.0.1:${port}`, privateKey: chain.accounts[0]!.privateKey });
    await assert.rejects(
      deployRegistry({ tronWeb: down, minCommitmentAge: 0, maxCommitmentAge: 60, timeoutMs: 5_000 }),
      (e: unknown) => e instanceof ContractError && e.code === 'UNREACHABLE',
    );
  });

  test('snapshot/revert restores balances, contract state and blocks', async () => {
    const a = chain.accounts;
    const c: any = tw[3]!.contract(loadRegistryArtifact().abi as any, registry);
    const bal = await tw[0]!.trx.getBalance(a[3]!.address);
    const head: any = await tw[0]!.trx.getCurrentBlock();
    const snap = await chain.snapshot();
    await tw[3]!.trx.sendTransaction(a[0]!.address, 5_000_000);
    const secret = new Uint8Array(32).fill(3);
    await c.commit(registryCommitment('dave', a[3]!.hexAddress, secret)).send({ feeLimit: FEE });
    const reg = await c.register('dave', KEY1, KEY2, '', SIG, '0x' + Buffer.from(secret).toString('hex')).send({ feeLimit: FEE });
    assert.equal((await info(tw[3]!, reg)).receipt.result, 'SUCCESS');
    assert.equal((await c.lookup('dave').call()).owner, a[3]!.hexAddress);
    await chain.revert(snap);
    assert.equal(await tw[0]!.trx.getBalance(a[3]!.address), bal);
    assert.equal((await c.lookup('dave').call()).version, 0n);
    assert.deepEqual(((await tw[0]!.trx.getCurrentBlock()) as any).blockID, head.blockID);
    assert.deepEqual(await tw[0]!.trx.getTransactionInfo(reg), {});
    await assert.rejects(chain.revert(snap), { code: 'BAD_SNAPSHOT' });
  });

  test('admin routes drive the chain over HTTP', async () => {
    const post = async (path: string, body: unknown = {}) =>
      (await fetch(`${chain.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<any>;
    const { id } = await post('/admin/snapshot');
    const before = (await tw[0]!.trx.getCurrentBlock()) as any;
    const mined = await post('/admin/increaseTime', { seconds: 30 });
    assert.equal(mined.blockNumber, before.block_header.raw_data.number + 1);
    assert.ok(mined.timestamp >= before.block_header.raw_data.timestamp + 30_000);
    assert.equal((await post('/admin/mine')).blockNumber, mined.blockNumber + 1);
    assert.deepEqual(await post('/admin/revert', { id }), { reverted: true });
    assert.equal(((await tw[0]!.trx.getCurrentBlock()) as any).blockID, before.blockID);
    const accounts = (await (await fetch(`${chain.url}/admin/accounts`)).json()) as any;
    assert.deepEqual(accounts.accounts.map((x: any) => x.address), chain.accounts.map((x) => x.address));
    assert.ok(!JSON.stringify(accounts).includes(chain.accounts[0]!.privateKey));
    assert.equal((await fetch(`${chain.url}/healthcheck`)).status, 200);
  });

  test('latency: register().send() and lookup().call() (figures for benchmarks)', async (t) => {
    const N = 20;
    const a = chain.accounts[4]!;
    const c: any = tw[4]!.contract(loadRegistryArtifact().abi as any, registry);
    const sends: number[] = [];
    const calls: number[] = [];
    for (let i = 0; i < N; i++) {
      const snap = await chain.snapshot();
      const secret = new Uint8Array(32).fill(i + 1);
      const name = `bench-${i}`;
      await c.commit(registryCommitment(name, a.hexAddress, secret)).send({ feeLimit: FEE });
      let t0 = performance.now();
      const txid = await c.register(name, KEY1, KEY2, 'mbx', SIG, '0x' + Buffer.from(secret).toString('hex')).send({ feeLimit: FEE });
      sends.push(performance.now() - t0);
      assert.equal((await info(tw[4]!, txid)).receipt.result, 'SUCCESS');
      t0 = performance.now();
      const r = await c.lookup(name).call();
      calls.push(performance.now() - t0);
      assert.equal(r.owner, a.hexAddress);
      await chain.revert(snap);
    }
    const stat = (xs: number[]) => {
      const s = xs.slice(1).sort((x, y) => x - y); // first run includes warm-up
      return `first ${xs[0]!.toFixed(1)} ms, median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms, p90 ${s[Math.floor(s.length * 0.9)]!.toFixed(1)} ms`;
    };
    t.diagnostic(`register().send() N=${N}: ${stat(sends)}`);
    t.diagnostic(`lookup().call() N=${N}: ${stat(calls)}`);
  });
});
