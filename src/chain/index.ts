/**
 * A local TRON-compatible dev chain for tests and the offline sandbox (never for production).
 *
 * It serves, on 127.0.0.1, the part of java-tron's HTTP API that tronweb 6 uses (wallet/* and the
 * walletsolidity/* mirrors: getnowblock, getblock, getblockbynum, getblockbyid, broadcasttransaction,
 * triggersmartcontract, triggerconstantcontract, estimateenergy, getcontract, getcontractinfo,
 * getaccount, gettransactionbyid, gettransactioninfobyid, getnodeinfo, getchainparameters), TronGrid's
 * `/v1/contracts/<addr>/events`, `/v1/transactions/<id>/events`, `/v1/blocks/<n>/events` and
 * `/healthcheck`, plus `/admin/*` routes (see http.ts). Contracts run on @ethereumjs/evm at
 * Hardfork.Cancun. Real tronweb talks to it unchanged: `new TronWeb({ fullHost: chain.url })`.
 *
 * What it does like java-tron:
 *  - broadcast validation with java-tron's envelopes `{code, txid, message: hex(utf8)}`: tronweb's
 *    txCheck of raw_data against raw_data_hex and txID (OTHER_ERROR), duplicates
 *    (DUP_TRANSACTION_ERROR), TaPoS against the last 65536 blocks (TAPOS_ERROR), expiration
 *    relative to the head block's time, not the wall clock (TRANSACTION_EXPIRATION_ERROR), the
 *    signer recovered from the signature must be the owner (SIGERROR), balance, amount and
 *    fee_limit checks (CONTRACT_VALIDATE_ERROR "… balance is not sufficient.");
 *  - one block per accepted transaction; TRON's contract address 41 ++ keccak256(txID ++ owner)[12:];
 *    CREATE2 with the 0x41 prefix;
 *  - reverts: a reverted constant call answers result.message = "REVERT opcode executed" with the
 *    revert data in constant_result[0]; a reverted transaction is mined with receipt.result
 *    'REVERT', result 'FAILED', resMessage, and the revert data in contractResult[0].
 *
 * What it does not emulate (documented differences):
 *  - the TVM energy schedule: energy is EVM gas (EIP-2929 costs and all), charged at
 *    `energyFee` sun per unit from the owner's balance; no frozen energy, no origin-energy sharing;
 *  - bandwidth and account-creation fees (transfers are free); staking, voting, freezing;
 *  - TRC-10 tokens (call_token_value/token_id are refused), TRON opcodes and precompiles, nested
 *    CREATE addresses (EVM nonce rule here);
 *  - multisig and permissions (more than one signature, or Permission_id ≠ 0, is SIGERROR);
 *  - a contract transaction whose owner cannot pay for a single unit of energy is refused at
 *    broadcast (CONTRACT_VALIDATE_ERROR "… balance is not sufficient.") where java-tron would mine
 *    it as OUT_OF_ENERGY;
 *  - solidification lag (walletsolidity/* sees every block at once), witnesses, block signatures,
 *    p2p, persistence (state lives in memory and dies with close()).
 */
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../clock.js';
import { silentLogger, type Logger } from '../log.js';
import { DEFAULT_SEED, deriveDevAccounts, type DevAccount } from './accounts.js';
import { Chain, DEFAULT_CHAIN_PARAMS, type ChainParams } from './chain.js';
import { ChainError } from './errors.js';
import { createHttpServer } from './http.js';

export { ChainError, type ChainErrorCode } from './errors.js';
export { DEFAULT_SEED, deriveDevAccounts, type DevAccount } from './accounts.js';
export { DEFAULT_CHAIN_PARAMS, contractAddressOf, type ChainParams } from './chain.js';

/** The port the CLI's dev chain listens on by default (tests use 0). */
export const DEFAULT_DEV_CHAIN_PORT = 9090;

export interface DevChainOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** TCP port; default 0 (any free port). The CLI passes DEFAULT_DEV_CHAIN_PORT. */
  port?: number;
  /** Number of prefunded accounts; default 5. */
  accounts?: number;
  /** Seed the account keys derive from; default DEFAULT_SEED (same keys every run). */
  seed?: string;
  /** Balance of each account, sun; default 100 000 TRX. */
  prefundSun?: bigint;
  logger?: Logger;
  /** Block time source; default systemClock. increaseTime() adds an offset on top. */
  clock?: Clock;
  /** Energy price, fee-limit cap, chain id; defaults in DEFAULT_CHAIN_PARAMS. */
  params?: Partial<ChainParams>;
}

export interface DevChain {
  /** Base URL for tronweb's fullHost, e.g. http://127.0.0.1:41234 (no trailing slash). */
  readonly url: string;
  /** Prefunded accounts, deterministic for a seed. */
  readonly accounts: readonly DevAccount[];
  /** The chain id block.chainid returns. */
  readonly chainId: number;
  /** Saves the whole chain (state, blocks, transactions, events, time); returns an id for revert. */
  snapshot(): Promise<number>;
  /** Restores a snapshot; it and later snapshots are consumed. ChainError('BAD_SNAPSHOT') if unknown. */
  revert(id: number): Promise<void>;
  /** Moves chain time forward and mines an empty block at the new time. Returns the new head. */
  increaseTime(seconds: number): Promise<{ blockNumber: number; timestamp: number }>;
  /** Mines an empty block. */
  mine(): Promise<{ blockNumber: number; timestamp: number }>;
  /** Stops the HTTP server (open connections are closed). Idempotent: the same promise every call. */
  close(): Promise<void>;
}

/** Starts a dev chain with prefunded accounts and its HTTP server; resolves once it listens. */
export async function startDevChain(opts: DevChainOptions = {}): Promise<DevChain> {
  const host = opts.host ?? '127.0.0.1';
  const count = opts.accounts ?? 5;
  if (!Number.isInteger(count) || count < 0 || count > 1000) throw new ChainError('BAD_ARGUMENT', 'accounts must be 0..1000');
  const log = (opts.logger ?? silentLogger()).child({ layer: 'chain' });
  const accounts = deriveDevAccounts(opts.seed ?? DEFAULT_SEED, count);
  const params: ChainParams = { ...DEFAULT_CHAIN_PARAMS, ...opts.params };
  const chain = await Chain.create({
    clock: opts.clock ?? systemClock,
    logger: log,
    accounts,
    prefundSun: opts.prefundSun ?? 100_000_000_000n,
    params,
  });
  const server = createHttpServer(chain, accounts, log);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new ChainError('LISTEN_FAILED', `cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, accounts: accounts.map((a) => a.address), chainId: params.chainId }, 'dev chain listening');

  let closing: Promise<void> | undefined;
  const head = (b: { number: number; timestamp: number }) => ({ blockNumber: b.number, timestamp: b.timestamp });
  return {
    url,
    accounts,
    chainId: params.chainId,
    snapshot: () => chain.snapshot(),
    revert: (id) => chain.revert(id),
    increaseTime: async (s) => head(await chain.increaseTime(s)),
    mine: async () => head(await chain.mine()),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => log.info('dev chain stopped'));
      return closing;
    },
  };
}
