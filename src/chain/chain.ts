/**
 * The dev chain's core: blocks, transactions, validation and execution, with no HTTP. Every state
 * change and every block goes through one mutex, so concurrent requests see a serial chain.
 *
 * Blocks: one per accepted transaction (plus empty ones from mine()/increaseTime()). Block time is
 * the clock plus the increaseTime offset, kept strictly increasing (ms). blockID is java-tron's
 * layout: 8-byte big-endian number ++ the last 24 bytes of a sha256 over the header.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { DevAccount } from './accounts.js';
import { ChainError } from './errors.js';
import { decodeLog, type TronEvent } from './events.js';
import { EvmAdapter, type RunResult, type SavedState } from './evm.js';
import {
  encodeRawData, keccak256Hex, recoverSigner, sha256Hex, signatureHash, strip0x, toBase58, toHex41, txCheck, utf8ToHex,
  type RawDataJson, type TxJson,
} from './tron.js';

export interface ChainParams {
  /** Sun per unit of energy (java-tron's getEnergyFee). */
  energyFee: number;
  /** Largest fee_limit accepted, sun (getMaxFeeLimit). */
  maxFeeLimit: number;
  /** Energy given to constant calls and estimates. */
  constantEnergyLimit: number;
  /** What CHAINID returns (and the contract's chainId()). */
  chainId: number;
}

export const DEFAULT_CHAIN_PARAMS: Readonly<ChainParams> = Object.freeze({
  energyFee: 100,
  maxFeeLimit: 15_000_000_000,
  constantEnergyLimit: 100_000_000,
  chainId: 0x6f6e6470, // "ondp": distinct from TRON mainnet (0x2b6653dc) and Nile (0xcd8690dc)
});

/** Largest raw_data accepted, bytes (java-tron: TOO_BIG_TRANSACTION_ERROR). */
const MAX_TX_BYTES = 500 * 1024;
/** java-tron's MAXIMUM_TIME_UNTIL_EXPIRATION. */
const MAX_EXPIRATION_MS = 24 * 60 * 60 * 1000;

export interface BlockRecord {
  number: number;
  blockID: string;
  parentHash: string;
  timestamp: number;
  txIDs: string[];
}

/** java-tron's TransactionInfo as JSON (visible=false). */
export interface TxInfo {
  id: string;
  fee?: number;
  blockNumber: number;
  blockTimeStamp: number;
  contractResult: string[];
  contract_address?: string;
  receipt: { energy_usage_total?: number; energy_fee?: number; net_usage?: number; result?: string };
  log?: { address: string; topics: string[]; data: string }[];
  result?: 'FAILED';
  resMessage?: string;
}

interface StoredTx {
  tx: TxJson;
  info: TxInfo;
}

/** java-tron's broadcast answer: success, or an error envelope with the message as hex UTF-8. */
export type BroadcastResult = { result: true; txid: string } | { code: string; txid: string; message: string };

export interface ContractMeta {
  contract_address: string; // 41-hex
  origin_address: string;
  bytecode: string;
  name?: string;
  abi: { entrys?: unknown[] };
  consume_user_resource_percent?: number;
  origin_energy_limit?: number;
}

/** The request body of triggersmartcontract / triggerconstantcontract / estimateenergy. */
export interface TriggerRequest {
  owner_address?: string;
  contract_address?: string;
  function_selector?: string;
  parameter?: string;
  data?: string;
  call_value?: number;
  call_token_value?: number;
  token_id?: number;
  fee_limit?: number;
  Permission_id?: number;
}

interface Snapshot {
  id: number;
  state: SavedState;
  blocks: BlockRecord[];
  txs: Map<string, StoredTx>;
  contracts: Map<string, ContractMeta>;
  events: TronEvent[];
  offsetMs: number;
}

class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

class Reject extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export class Chain {
  readonly params: ChainParams;
  readonly #evm: EvmAdapter;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #mutex = new Mutex();
  #blocks: BlockRecord[] = [];
  #txs = new Map<string, StoredTx>();
  #contracts = new Map<string, ContractMeta>();
  #events: TronEvent[] = [];
  #snapshots: Snapshot[] = [];
  #nextSnapshot = 1;
  #offsetMs = 0;

  private constructor(evm: EvmAdapter, clock: Clock, log: Logger, params: ChainParams) {
    this.#evm = evm;
    this.#clock = clock;
    this.#log = log;
    this.params = params;
  }

  static async create(opts: { clock: Clock; logger: Logger; accounts: DevAccount[]; prefundSun: bigint; params: ChainParams }): Promise<Chain> {
    const evm = await EvmAdapter.create(opts.params.chainId);
    const chain = new Chain(evm, opts.clock, opts.logger, opts.params);
    for (const a of opts.accounts) await evm.addBalance(a.hexAddress, opts.prefundSun);
    chain.#appendBlock([], opts.clock.now());
    return chain;
  }

  // ─── reads ─────────────────────────────────────────────────────────────

  head(): BlockRecord {
    return this.#blocks[this.#blocks.length - 1]!;
  }

  block(n: number): BlockRecord | undefined {
    return this.#blocks[n];
  }

  blockById(id: string): BlockRecord | undefined {
    const n = parseInt(id.slice(0, 16), 16);
    const b = Number.isSafeInteger(n) ? this.#blocks[n] : undefined;
    return b && b.blockID === id.toLowerCase() ? b : undefined;
  }

  tx(id: string): { tx: TxJson; info: TxInfo } | undefined {
    return this.#txs.get(id.toLowerCase());
  }

  contract(hex41: string): ContractMeta | undefined {
    return this.#contracts.get(hex41);
  }

  events(): readonly TronEvent[] {
    return this.#events;
  }

  async balance(hex41: string): Promise<bigint> {
    return this.#evm.balance(hex41);
  }

  async accountExists(hex41: string): Promise<boolean> {
    return this.#evm.exists(hex41);
  }

  async code(hex41: string): Promise<string> {
    return this.#evm.code(hex41);
  }

  /** Chain time: the clock plus every increaseTime() so far, ms. */
  now(): number {
    return this.#clock.now() + this.#offsetMs;
  }

  // ─── admin ─────────────────────────────────────────────────────────────

  snapshot(): Promise<number> {
    return this.#mutex.run(async () => {
      const id = this.#nextSnapshot++;
      this.#snapshots.push({
        id,
        state: this.#evm.save(),
        blocks: this.#blocks.slice(),
        txs: new Map(this.#txs),
        contracts: new Map(this.#contracts),
        events: this.#events.slice(),
        offsetMs: this.#offsetMs,
      });
      return id;
    });
  }

  /** Restores snapshot `id`; it and every later snapshot are consumed. */
  revert(id: number): Promise<void> {
    return this.#mutex.run(async () => {
      const at = this.#snapshots.findIndex((s) => s.id === id);
      if (at < 0) throw new ChainError('BAD_SNAPSHOT', `no snapshot ${id}`);
      const s = this.#snapshots[at]!;
      this.#snapshots.length = at;
      this.#evm.restore(s.state);
      this.#blocks = s.blocks;
      this.#txs = s.txs;
      this.#contracts = s.contracts;
      this.#events = s.events;
      this.#offsetMs = s.offsetMs;
      this.#log.debug({ id, head: this.head().number }, 'reverted to snapshot');
    });
  }

  /** Moves chain time forward and mines an empty block at the new time, so the head shows it. */
  increaseTime(seconds: number): Promise<BlockRecord> {
    if (!Number.isFinite(seconds) || seconds < 0) return Promise.reject(new ChainError('BAD_ARGUMENT', 'seconds must be >= 0'));
    return this.#mutex.run(async () => {
      this.#offsetMs += Math.round(seconds * 1000);
      return this.#appendBlock([], this.#nextBlockTime());
    });
  }

  mine(): Promise<BlockRecord> {
    return this.#mutex.run(async () => this.#appendBlock([], this.#nextBlockTime()));
  }

  // ─── transactions ──────────────────────────────────────────────────────

  /** wallet/broadcasttransaction: validate like java-tron, execute, and mine one block. */
  broadcast(body: unknown): Promise<BroadcastResult> {
    return this.#mutex.run(async () => {
      const tx = body as TxJson;
      const txid = typeof tx?.txID === 'string' ? tx.txID.toLowerCase() : '';
      try {
        await this.#validate(tx, txid);
        const blockTime = this.#nextBlockTime();
        const number = this.head().number + 1;
        const info = await this.#execute(tx, txid, number, blockTime);
        this.#txs.set(txid, { tx: { ...tx, txID: txid }, info });
        this.#appendBlock([txid], blockTime);
        this.#log.debug({ txid, type: tx.raw_data.contract[0]?.type, block: number, result: info.receipt.result ?? 'SUCCESS' }, 'transaction mined');
        return { result: true, txid };
      } catch (err) {
        if (err instanceof Reject) {
          this.#log.debug({ txid, code: err.code, reason: err.message }, 'transaction rejected');
          return { code: err.code, txid, message: utf8ToHex(err.message) };
        }
        throw err;
      }
    });
  }

  /**
   * wallet/triggersmartcontract: builds (does not run) a TriggerSmartContract transaction, encoded
   * with tronweb's encoder so the client's byte-for-byte check passes.
   */
  buildTrigger(req: TriggerRequest): Record<string, unknown> {
    const built = this.#buildTriggerTx(req, true);
    if ('error' in built) return { result: { code: 'CONTRACT_VALIDATE_ERROR', message: utf8ToHex(built.error) } };
    return { result: { result: true }, transaction: built.tx };
  }

  /** wallet/triggerconstantcontract: runs the call against current state and throws the effects away. */
  constantCall(req: TriggerRequest): Promise<Record<string, unknown>> {
    return this.#mutex.run(async () => {
      const built = this.#buildTriggerTx(req, false);
      if ('error' in built) return { result: { code: 'CONTRACT_VALIDATE_ERROR', message: utf8ToHex(built.error) } };
      const head = this.head();
      const res = await this.#evm.runConstant({
        caller: built.owner,
        to: built.contract,
        data: built.data,
        value: built.callValue,
        energyLimit: BigInt(this.params.constantEnergyLimit),
        block: { number: head.number + 1, timestampMs: this.#nextBlockTime() },
      });
      const out: Record<string, unknown> = {
        result: res.ok ? { result: true } : { code: 'CONTRACT_EXE_ERROR', message: utf8ToHex(res.errorMessage ?? 'error') },
        energy_used: res.energyUsed,
        constant_result: [res.returnHex],
        transaction: { ...built.tx, ret: [{ ret: res.ok ? 'SUCESS' : 'FAILED' }] },
      };
      return out;
    });
  }

  /** wallet/estimateenergy: the energy a call would use now. */
  async estimateEnergy(req: TriggerRequest): Promise<Record<string, unknown>> {
    const r = await this.constantCall(req);
    const result = r.result as { result?: boolean };
    if (!result.result) return r;
    return { result: { result: true }, energy_required: r.energy_used };
  }

  // ─── internals ─────────────────────────────────────────────────────────

  #nextBlockTime(): number {
    return Math.max(this.head().timestamp + 1, this.now());
  }

  #appendBlock(txIDs: string[], timestamp: number): BlockRecord {
    const prev = this.#blocks[this.#blocks.length - 1];
    const number = prev ? prev.number + 1 : 0;
    const parentHash = prev ? prev.blockID : '0'.repeat(64);
    const h = sha256Hex(`${number}|${parentHash}|${timestamp}|${txIDs.join(',')}`);
    const blockID = number.toString(16).padStart(16, '0') + h.slice(16);
    const b: BlockRecord = { number, blockID, parentHash, timestamp, txIDs };
    this.#blocks.push(b);
    return b;
  }

  #refBlock(bytes: string, hash: string): BlockRecord | undefined {
    const low = parseInt(bytes, 16);
    if (!/^[0-9a-f]{4}$/i.test(bytes) || !/^[0-9a-f]{16}$/i.test(hash)) return undefined;
    // Like java-tron, only the last 65536 blocks are addressable by ref_block_bytes.
    const head = this.head().number;
    let n = head - ((head - low) & 0xffff);
    if (n < 0) return undefined;
    const b = this.#blocks[n];
    return b && b.blockID.slice(16, 32) === hash.toLowerCase() ? b : undefined;
  }

  async #validate(tx: TxJson, txid: string): Promise<void> {
    if (!tx || typeof tx !== 'object' || !tx.raw_data || !Array.isArray(tx.raw_data.contract) || typeof tx.raw_data_hex !== 'string' || !/^[0-9a-f]{64}$/.test(txid)) {
      throw new Reject('OTHER_ERROR', 'malformed transaction');
    }
    if (tx.raw_data_hex.length / 2 > MAX_TX_BYTES) throw new Reject('TOO_BIG_TRANSACTION_ERROR', 'too big transaction');
    if (tx.raw_data.contract.length !== 1) throw new Reject('CONTRACT_VALIDATE_ERROR', 'contract size should be exactly 1');
    if (!txCheck(tx)) throw new Reject('OTHER_ERROR', 'raw_data does not match raw_data_hex or txID');
    if (this.#txs.has(txid)) throw new Reject('DUP_TRANSACTION_ERROR', 'dup trans');
    const raw = tx.raw_data;
    if (!this.#refBlock(raw.ref_block_bytes, raw.ref_block_hash)) {
      throw new Reject('TAPOS_ERROR', `Tapos check error: no block ${raw.ref_block_bytes}/${raw.ref_block_hash} among recent blocks`);
    }
    const headTime = this.head().timestamp;
    if (!(raw.expiration > headTime)) {
      throw new Reject('TRANSACTION_EXPIRATION_ERROR', `Transaction expiration, transaction expiration time is ${raw.expiration}, but headBlockTime is ${headTime}`);
    }
    if (raw.expiration > headTime + MAX_EXPIRATION_MS) {
      throw new Reject('TRANSACTION_EXPIRATION_ERROR', `expiration is too long: ${raw.expiration}, headBlockTime is ${headTime}`);
    }
    const c = raw.contract[0]!;
    const owner = toHex41(String(c.parameter?.value?.owner_address ?? ''));
    if (!owner) throw new Reject('CONTRACT_VALIDATE_ERROR', 'Invalid ownerAddress');
    const sigs = tx.signature ?? [];
    if (sigs.length === 0) throw new Reject('SIGERROR', 'miss sig or contract');
    if (sigs.length > 1 || (c.Permission_id ?? 0) !== 0) throw new Reject('SIGERROR', 'multi-signature and permissions are not supported by the dev chain');
    let signer: string;
    try {
      signer = recoverSigner(txid, sigs[0]!);
    } catch {
      throw new Reject('SIGERROR', 'Validate signature error: malformed signature');
    }
    if (signer !== owner) {
      throw new Reject('SIGERROR', `Validate signature error: ${txid} is signed by ${toBase58(signer)} but it is not contained of permission.`);
    }
  }

  async #execute(tx: TxJson, txid: string, number: number, blockTime: number): Promise<TxInfo> {
    const raw = tx.raw_data;
    const c = raw.contract[0]!;
    const v = c.parameter.value;
    const owner = toHex41(String(v.owner_address))!;
    const base = { id: txid, blockNumber: number, blockTimeStamp: blockTime };
    const netUsage = tx.raw_data_hex.length / 2 + 65 * (tx.signature?.length ?? 0);
    switch (c.type) {
      case 'TransferContract': {
        const to = toHex41(String(v.to_address ?? ''));
        const amount = Number(v.amount ?? 0);
        if (!to) throw new Reject('CONTRACT_VALIDATE_ERROR', 'Invalid toAddress!');
        if (to === owner) throw new Reject('CONTRACT_VALIDATE_ERROR', 'Cannot transfer TRX to yourself.');
        if (!Number.isSafeInteger(amount) || amount <= 0) throw new Reject('CONTRACT_VALIDATE_ERROR', 'Amount must be greater than 0.');
        if (!(await this.#evm.exists(owner))) throw new Reject('CONTRACT_VALIDATE_ERROR', 'Validate TransferContract error, no OwnerAccount.');
        if ((await this.#evm.balance(owner)) < BigInt(amount)) {
          throw new Reject('CONTRACT_VALIDATE_ERROR', 'Validate TransferContract error, balance is not sufficient.');
        }
        await this.#evm.addBalance(owner, -BigInt(amount));
        await this.#evm.addBalance(to, BigInt(amount));
        return { ...base, contractResult: [''], receipt: { net_usage: netUsage } };
      }
      case 'CreateSmartContract':
      case 'TriggerSmartContract': {
        const create = c.type === 'CreateSmartContract';
        const nc = (create ? v.new_contract : v) as Record<string, unknown> | undefined;
        if (!nc) throw new Reject('CONTRACT_VALIDATE_ERROR', 'missing new_contract');
        const callValue = BigInt(Number(nc.call_value ?? 0));
        if (nc.call_token_value || nc.token_id || v.call_token_value || v.token_id) throw new Reject('CONTRACT_VALIDATE_ERROR', 'TRC-10 is not supported by the dev chain');
        const feeLimit = raw.fee_limit ?? 0;
        if (!Number.isSafeInteger(feeLimit) || feeLimit <= 0 || feeLimit > this.params.maxFeeLimit) {
          throw new Reject('CONTRACT_VALIDATE_ERROR', `feeLimit must be > 0 and <= ${this.params.maxFeeLimit}`);
        }
        const what = create ? 'CreateSmartContract' : 'TriggerSmartContract';
        const balance = await this.#evm.balance(owner);
        const energyLimit = balance > callValue ? minBig(BigInt(feeLimit), balance - callValue) / BigInt(this.params.energyFee) : 0n;
        // java-tron would accept and fail with OUT_OF_ENERGY; refusing here gives a clear error (documented in index.ts).
        if (balance < callValue || energyLimit === 0n) throw new Reject('CONTRACT_VALIDATE_ERROR', `Validate ${what} error, balance is not sufficient.`);
        let to: string | undefined;
        let createAt: string | undefined;
        let data: string;
        if (create) {
          createAt = contractAddressOf(txid, owner);
          data = strip0x(String(nc.bytecode ?? ''));
          if (!/^([0-9a-f]{2})+$/i.test(data)) throw new Reject('CONTRACT_VALIDATE_ERROR', 'bytecode must be hex');
        } else {
          to = toHex41(String(v.contract_address ?? ''));
          if (!to || (await this.#evm.code(to)) === '') throw new Reject('CONTRACT_VALIDATE_ERROR', 'No contract or not a smart contract');
          data = strip0x(String(v.data ?? ''));
        }
        const res: RunResult = await this.#evm.run({
          caller: owner, to, createAt, data, value: callValue, energyLimit, block: { number, timestampMs: blockTime },
        });
        const energyFee = BigInt(res.energyUsed) * BigInt(this.params.energyFee);
        await this.#evm.addBalance(owner, -energyFee);
        const contractAddress = create ? createAt! : to!;
        const info: TxInfo = {
          ...base,
          fee: Number(energyFee),
          contractResult: [create && res.ok ? '' : res.returnHex],
          contract_address: contractAddress,
          receipt: { energy_usage_total: res.energyUsed, energy_fee: Number(energyFee), net_usage: netUsage, result: res.receiptResult },
        };
        if (res.ok && res.logs.length > 0) info.log = res.logs;
        if (!res.ok) {
          info.result = 'FAILED';
          info.resMessage = utf8ToHex(res.errorMessage ?? 'failed');
        }
        if (create && res.ok) {
          this.#contracts.set(createAt!, {
            contract_address: createAt!,
            origin_address: owner,
            bytecode: data,
            name: typeof nc.name === 'string' ? nc.name : undefined,
            abi: (nc.abi as { entrys?: unknown[] } | undefined) ?? {},
            consume_user_resource_percent: Number(nc.consume_user_resource_percent ?? 100),
            origin_energy_limit: Number(nc.origin_energy_limit ?? 10_000_000),
          });
        }
        res.logs.forEach((log, i) => {
          const meta = this.#contracts.get('41' + log.address);
          const ev = meta?.abi.entrys ? decodeLog(meta.abi.entrys, log, { txID: txid, blockNumber: number, blockTimestamp: blockTime, index: i }) : undefined;
          if (ev && res.ok) this.#events.push(ev);
        });
        return info;
      }
      default:
        throw new Reject('CONTRACT_VALIDATE_ERROR', `contract type ${c.type} is not supported by the dev chain`);
    }
  }

  #buildTriggerTx(req: TriggerRequest, withFee: boolean):
    | { error: string }
    | { tx: TxJson; owner: string; contract: string; data: string; callValue: bigint } {
    const owner = req.owner_address ? toHex41(req.owner_address) : '41' + '0'.repeat(40);
    const contract = req.contract_address ? toHex41(req.contract_address) : undefined;
    if (!owner) return { error: 'Invalid ownerAddress' };
    if (!contract) return { error: 'Invalid contractAddress' };
    let data: string;
    if (req.data) data = strip0x(req.data);
    else if (req.function_selector) data = signatureHash(req.function_selector.replace(/\s/g, '')).slice(0, 8) + strip0x(req.parameter ?? '');
    else data = '';
    if (!/^([0-9a-f]{2})*$/i.test(data)) return { error: 'data must be hex' };
    const callValue = Number(req.call_value ?? 0);
    const value: Record<string, unknown> = { data, owner_address: owner, contract_address: contract };
    if (callValue) value.call_value = callValue;
    if (req.call_token_value) value.call_token_value = req.call_token_value;
    if (req.token_id) value.token_id = req.token_id;
    const head = this.head();
    const contractJson: RawDataJson['contract'][number] = {
      parameter: { value, type_url: 'type.googleapis.com/protocol.TriggerSmartContract' },
      type: 'TriggerSmartContract',
    };
    if (req.Permission_id) contractJson.Permission_id = req.Permission_id;
    const raw: RawDataJson = {
      contract: [contractJson],
      ref_block_bytes: (head.number & 0xffff).toString(16).padStart(4, '0'),
      ref_block_hash: head.blockID.slice(16, 32),
      expiration: head.timestamp + 60_000,
      // java-tron stamps node-built transactions with its wall clock, not the ref block's time.
      timestamp: Math.max(this.now(), head.timestamp),
    };
    if (withFee && req.fee_limit) raw.fee_limit = Number(req.fee_limit);
    const enc = encodeRawData(raw);
    return {
      tx: { visible: false, txID: enc.txID, raw_data: raw, raw_data_hex: enc.raw_data_hex },
      owner, contract, data, callValue: BigInt(callValue),
    };
  }
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** TRON's top-level contract address: 41 ++ keccak256(txID ++ owner21)[12:]. */
export function contractAddressOf(txID: string, owner41: string): string {
  return '41' + keccak256Hex(txID + owner41).slice(24);
}
