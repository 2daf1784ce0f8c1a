/**
 * The EVM side of the dev chain: @ethereumjs/evm at Hardfork.Cancun over an in-memory state, with
 * TRON's address rules. Addresses cross this boundary as 41-hex; inside they are 20-byte EVM
 * addresses. Amounts are sun (1 TRX = 1e6 sun) both as TRX balances and as msg.value.
 *
 * TRON differences emulated: the top-level contract address is chosen by the caller
 * (41 ++ keccak256(txID ++ owner21)[12:], computed by the client); CREATE2 hashes with the 0x41
 * prefix instead of 0xff. Not emulated: nested CREATE addresses (EVM nonce rule here), the TVM
 * energy schedule (energy = EVM gas), TRON precompiles and opcodes.
 */
import { createEVM, type EVM } from '@ethereumjs/evm';
import { createCustomCommon, Hardfork, Mainnet } from '@ethereumjs/common';
import { SimpleStateManager } from '@ethereumjs/statemanager';
import { Account, Address, bytesToHex, hexToBytes } from '@ethereumjs/util';
import { keccak256Hex, strip0x } from './tron.js';

export interface BlockContext {
  number: number;
  /** Milliseconds, as in TRON block headers; the EVM sees seconds. */
  timestampMs: number;
}

export interface LogRecord {
  /** 20-byte hex, no prefix (TransactionInfo.log[].address). */
  address: string;
  topics: string[];
  data: string;
}

export interface RunResult {
  ok: boolean;
  /** Return data, or revert data on failure, hex without 0x. */
  returnHex: string;
  energyUsed: number;
  logs: LogRecord[];
  /** java-tron contractResult name: SUCCESS, REVERT, OUT_OF_ENERGY, ILLEGAL_OPERATION, ... */
  receiptResult: string;
  /** java-tron style failure message ("REVERT opcode executed", ...), undefined on success. */
  errorMessage: string | undefined;
}

export interface RunOptions {
  caller: string; // 41-hex
  to?: string; // 41-hex; absent for a creation
  createAt?: string; // 41-hex; required for a creation
  data: string; // hex
  value: bigint;
  energyLimit: bigint;
  block: BlockContext;
}

interface SavedState {
  accounts: Map<`0x${string}`, Account | undefined>;
  code: Map<`0x${string}`, Uint8Array>;
  storage: Map<string, Uint8Array>;
}

export function evmAddress(hex41: string): Address {
  return new Address(hexToBytes(`0x${hex41.slice(2)}`));
}

function cloneAccounts(m: Map<`0x${string}`, Account | undefined>): Map<`0x${string}`, Account | undefined> {
  const out = new Map<`0x${string}`, Account | undefined>();
  for (const [k, a] of m) out.set(k, a === undefined ? undefined : (Object.assign(Object.create(Object.getPrototypeOf(a) as object), a) as Account));
  return out;
}

function mapError(err: string): { receiptResult: string; message: string } {
  switch (err) {
    case 'revert':
      return { receiptResult: 'REVERT', message: 'REVERT opcode executed' };
    case 'out of gas':
    case 'code store out of gas':
      return { receiptResult: 'OUT_OF_ENERGY', message: 'Not enough energy' };
    case 'invalid JUMP':
      return { receiptResult: 'BAD_JUMP_DESTINATION', message: 'Bad jump destination' };
    case 'stack underflow':
      return { receiptResult: 'STACK_TOO_SMALL', message: 'Stack too small' };
    case 'stack overflow':
      return { receiptResult: 'STACK_TOO_LARGE', message: 'Stack too large' };
    case 'invalid opcode':
      return { receiptResult: 'ILLEGAL_OPERATION', message: 'Invalid operation code' };
    default:
      return { receiptResult: 'UNKNOWN', message: err };
  }
}

export class EvmAdapter {
  readonly #evm: EVM;
  readonly #state: SimpleStateManager;
  /** The address the next top-level creation lands at (TRON's rule, see the module comment). */
  #pendingCreate: Address | undefined;

  private constructor(evm: EVM, state: SimpleStateManager) {
    this.#evm = evm;
    this.#state = state;
    const generate = (evm as unknown as { _generateAddress(m: GenMessage): Promise<Address> })._generateAddress.bind(evm);
    (evm as unknown as { _generateAddress(m: GenMessage): Promise<Address> })._generateAddress = async (m: GenMessage) => {
      if (m.depth === 0 && !m.salt && this.#pendingCreate) return this.#pendingCreate;
      if (m.salt) {
        const codeHash = keccak256Hex(bytesToHex(m.code ?? new Uint8Array()));
        const h = keccak256Hex('41' + strip0x(m.caller.toString()) + strip0x(bytesToHex(m.salt)) + codeHash);
        return new Address(hexToBytes(`0x${h.slice(24)}`));
      }
      return generate(m);
    };
  }

  static async create(chainId: number): Promise<EvmAdapter> {
    const common = createCustomCommon({ chainId, name: 'onionpost-dev' }, Mainnet, { hardfork: Hardfork.Cancun });
    const state = new SimpleStateManager({ common });
    const evm = await createEVM({ common, stateManager: state });
    return new EvmAdapter(evm, state);
  }

  async balance(hex41: string): Promise<bigint> {
    return (await this.#state.getAccount(evmAddress(hex41)))?.balance ?? 0n;
  }

  async exists(hex41: string): Promise<boolean> {
    return (await this.#state.getAccount(evmAddress(hex41))) !== undefined;
  }

  /** Adds `delta` (may be negative) to a balance, creating the account if needed. */
  async addBalance(hex41: string, delta: bigint): Promise<void> {
    const addr = evmAddress(hex41);
    const acc = (await this.#state.getAccount(addr)) ?? new Account();
    acc.balance += delta;
    if (acc.balance < 0n) throw new Error('negative balance');
    await this.#state.putAccount(addr, acc);
  }

  async code(hex41: string): Promise<string> {
    return strip0x(bytesToHex(await this.#state.getCode(evmAddress(hex41))));
  }

  /** Runs one top-level call or creation and keeps its effects (a failed run keeps only the nonce bump). */
  async run(o: RunOptions): Promise<RunResult> {
    this.#pendingCreate = o.to === undefined ? evmAddress(o.createAt ?? '') : undefined;
    try {
      const res = await this.#evm.runCall({
        caller: evmAddress(o.caller),
        origin: evmAddress(o.caller),
        ...(o.to !== undefined ? { to: evmAddress(o.to) } : {}),
        data: hexToBytes(`0x${strip0x(o.data)}`),
        value: o.value,
        gasLimit: o.energyLimit,
        block: this.#block(o.block),
      });
      const ex = res.execResult;
      const err = ex.exceptionError ? mapError(ex.exceptionError.error) : undefined;
      return {
        ok: !err,
        returnHex: strip0x(bytesToHex(ex.returnValue)),
        energyUsed: Number(ex.executionGasUsed),
        logs: (ex.logs ?? []).map(([a, topics, data]) => ({
          address: strip0x(bytesToHex(a)),
          topics: topics.map((t) => strip0x(bytesToHex(t))),
          data: strip0x(bytesToHex(data)),
        })),
        receiptResult: err ? err.receiptResult : 'SUCCESS',
        errorMessage: err?.message,
      };
    } finally {
      this.#pendingCreate = undefined;
      // What ethereumjs' VM does between transactions: forget warm sets and transient storage (EIP-1153).
      await this.#evm.journal.cleanup();
      this.#evm.transientStorage.clear();
    }
  }

  /** Runs a call and discards every effect (triggerconstantcontract). */
  async runConstant(o: RunOptions): Promise<RunResult> {
    await this.#state.checkpoint();
    try {
      return await this.run(o);
    } finally {
      await this.#state.revert();
    }
  }

  /** A copy of the whole state, for chain snapshots. */
  save(): SavedState {
    const top = this.#state.accountStack.length - 1;
    return {
      accounts: cloneAccounts(this.#state.accountStack[top]!),
      code: new Map(this.#state.codeStack[top]!),
      storage: new Map(this.#state.storageStack[top]!),
    };
  }

  /** Replaces the state with a saved copy; the copy must not be used again. */
  restore(s: SavedState): void {
    this.#state.accountStack = [s.accounts];
    this.#state.codeStack = [s.code];
    this.#state.storageStack = [s.storage];
  }

  #block(b: BlockContext) {
    return {
      header: {
        number: BigInt(b.number),
        coinbase: new Address(new Uint8Array(20)),
        timestamp: BigInt(Math.floor(b.timestampMs / 1000)),
        difficulty: 0n,
        prevRandao: new Uint8Array(32),
        gasLimit: 0n, // TVM's GASLIMIT returns 0
        baseFeePerGas: 0n,
        getBlobGasPrice: () => 1n,
      },
    };
  }
}

interface GenMessage {
  depth: number;
  salt?: Uint8Array;
  code?: Uint8Array;
  caller: Address;
}

export type { SavedState };
