/**
 * The thin adapter between the registry and a TRON full node, the only file that touches tronweb's
 * loosely typed HTTP layer. One `TronNode` per configured host. Requests go through tronweb's
 * HttpProvider (its axios instance carries the timeout and, for Tor, the SOCKS agent) with an
 * AbortSignal each. Writes use tronweb's own checks: the node-built transaction must re-encode
 * byte for byte from our arguments (`txCheckWithArgs`) before we sign it.
 *
 * Reverts: java-tron hides revert reasons behind "REVERT opcode executed"; the reason bytes are only
 * in `constant_result[0]` / `contractResult[0]`, and are decoded here.
 */
import type { Agent } from 'node:http';
import { providers, utils } from 'tronweb';
import { decodeRevert, type EncodedCall } from './abi.js';
import { addressOfPrivateKey as addressOf } from './address.js';
import { RegistryError } from './errors.js';

export type ConstantResult =
  | { ok: true; result: string }
  | { ok: false; reason: string | null; message: string };

export interface TxInfo {
  id: string;
  blockNumber: number;
  /** Block time, ms since epoch. */
  blockTimeStamp: number;
  success: boolean;
  /** Decoded revert reason, when the transaction failed with one. */
  reason: string | null;
  /** The node's own description of a failure (receipt result or resMessage). */
  message: string;
}

export interface TronNodeOptions {
  host: string;
  timeoutMs: number;
  agent?: Agent;
}

/** The zero address: reads are sent "from" nobody, so a lookup does not reveal who is asking. */
export const ANONYMOUS_CALLER = '410000000000000000000000000000000000000000';

interface NodeReply {
  Error?: unknown;
  result?: { result?: boolean; code?: string; message?: string };
  constant_result?: unknown[];
  transaction?: Record<string, unknown>;
  txid?: string;
  code?: string;
  message?: string;
  [k: string]: unknown;
}

function text(hexOrText: unknown): string {
  const s = String(hexOrText ?? '');
  if (/^(?:[0-9a-fA-F]{2})+$/.test(s)) {
    const t = Buffer.from(s, 'hex').toString('utf8');
    if (/^[\x20-\x7e]*$/.test(t)) return t;
  }
  return s;
}

export class TronNode {
  readonly host: string;
  readonly #provider: InstanceType<typeof providers.HttpProvider>;

  constructor(opts: TronNodeOptions) {
    this.host = opts.host.replace(/\/+$/, '');
    this.#provider = new providers.HttpProvider(this.host, opts.timeoutMs);
    if (opts.agent) {
      // tronweb types its axios instance narrowly; it is a full AxiosInstance.
      const defaults = (this.#provider.instance as unknown as { defaults: { httpAgent?: Agent; httpsAgent?: Agent } }).defaults;
      defaults.httpAgent = opts.agent;
      defaults.httpsAgent = opts.agent;
    }
  }

  async #post(path: string, body: object, signal: AbortSignal | undefined): Promise<NodeReply> {
    if (signal?.aborted) throw new RegistryError('ABORTED', 'registry request aborted', { cause: signal.reason });
    let data: unknown;
    try {
      const res = await this.#provider.instance.request({ url: path, method: 'post', data: body, signal });
      data = res.data;
    } catch (err) {
      if (signal?.aborted) throw new RegistryError('ABORTED', 'registry request aborted', { cause: signal.reason });
      const e = err as { code?: string; message?: string; response?: { status?: number } };
      const why = e.response?.status ? `HTTP ${e.response.status}` : (e.code ?? e.message ?? 'error');
      throw new RegistryError('UNREACHABLE', `TRON node ${this.host} unreachable (${why}) on ${path}`, { cause: err });
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host} answered ${path} with something that is not a JSON object`);
    }
    return data as NodeReply;
  }

  /** A read-only call (`wallet/triggerconstantcontract`, or `walletsolidity/…` when `confirmed`). */
  async constantCall(contractHex: string, call: EncodedCall, opts: { from?: string; confirmed?: boolean; signal?: AbortSignal; callValue?: number }): Promise<ConstantResult> {
    const path = `${opts.confirmed ? 'walletsolidity' : 'wallet'}/triggerconstantcontract`;
    const reply = await this.#post(path, {
      contract_address: contractHex, owner_address: opts.from ?? ANONYMOUS_CALLER,
      function_selector: call.selector, parameter: call.parameter, call_value: opts.callValue ?? 0,
    }, opts.signal);
    if (reply.Error) throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host}: ${text(reply.Error)}`);
    const out = reply.constant_result?.[0];
    const failed = reply.result?.result !== true || reply.result?.message !== undefined;
    if (failed) {
      const message = text(reply.result?.message ?? reply.result?.code ?? 'call failed');
      // A revert carries its data in constant_result; a validation error (no such contract) does not.
      if (typeof out === 'string' && /revert/i.test(message + String(reply.result?.code ?? ''))) {
        return { ok: false, reason: decodeRevert(out), message };
      }
      if (/revert/i.test(message)) return { ok: false, reason: null, message };
      throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host} refused the call to ${call.selector}: ${message}`);
    }
    if (typeof out !== 'string' || !/^[0-9a-fA-F]*$/.test(out)) {
      throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host} returned no result for ${call.selector}`);
    }
    return { ok: true, result: out.toLowerCase() };
  }

  /** Balance in sun; null when the account does not exist on chain (never received TRX). */
  async balance(addressHex: string, signal?: AbortSignal): Promise<number | null> {
    const reply = await this.#post('wallet/getaccount', { address: addressHex }, signal);
    if (Object.keys(reply).length === 0) return null;
    const b = reply['balance'];
    return typeof b === 'number' ? b : 0;
  }

  /**
   * Builds (node side), checks, signs (locally) and broadcasts a contract call; returns the txID.
   * The private key stays in this function's arguments: it is never logged or stored. `callValue`
   * is TRX (sun) sent along with the call (stakes and payments).
   */
  async send(contractHex: string, call: EncodedCall, privateKey: string, feeLimitSun: number, signal?: AbortSignal, callValue = 0): Promise<string> {
    const from = addressOfPrivateKey(privateKey);
    if (!from) throw new TypeError('not a TRON private key');
    const args = {
      contract_address: contractHex, owner_address: from, function_selector: call.selector, parameter: call.parameter,
      call_value: callValue, fee_limit: feeLimitSun,
    };
    const built = await this.#post('wallet/triggersmartcontract', args, signal);
    if (built.Error) throw new RegistryError('TX_FAILED', `TRON node ${this.host} could not build ${call.selector}: ${text(built.Error)}`);
    if (built.result?.message !== undefined || built.result?.result !== true || !built.transaction) {
      const message = text(built.result?.message ?? built.result?.code ?? 'no transaction');
      throw this.#broadcastError(call.selector, built.result?.code, message);
    }
    const tx = built.transaction;
    // The node chose only the TaPoS fields; everything else must be exactly what we asked for.
    if (!utils.transaction.txCheckWithArgs(tx as never, args as never, {} as never)) {
      throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host} built a transaction that does not match the request`);
    }
    if (!utils.transaction.txCheck(tx as never)) throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host} sent an inconsistent transaction`);
    const signed = utils.crypto.signTransaction(privateKey, tx as never) as unknown as Record<string, unknown>;
    const sent = await this.#post('wallet/broadcasttransaction', signed, signal);
    if (sent.result !== (true as unknown)) {
      throw this.#broadcastError(call.selector, sent.code, text(sent.message ?? sent.code ?? 'broadcast failed'));
    }
    return String(signed['txID']);
  }

  #broadcastError(selector: string, code: unknown, message: string): RegistryError {
    if (/balance is not sufficient|not sufficient balance|no OwnerAccount|account .*does not exist|account not exists?/i.test(message)) {
      return new RegistryError('UNFUNDED', `the TRON account cannot pay for ${selector}: ${message}`);
    }
    return new RegistryError('TX_FAILED', `TRON node ${this.host} rejected ${selector}: ${String(code ?? '')} ${message}`.trim());
  }

  /** The transaction's outcome once it is in a block (head, not solidified); null while it is not. */
  async txInfo(txId: string, signal?: AbortSignal): Promise<TxInfo | null> {
    const r = await this.#post('wallet/gettransactioninfobyid', { value: txId }, signal);
    if (!r['id'] || typeof r['blockNumber'] !== 'number') return null;
    const receipt = (r['receipt'] ?? {}) as { result?: string };
    const failed = (r['result'] as unknown) === 'FAILED' || (receipt.result !== undefined && receipt.result !== 'SUCCESS');
    const contractResult = Array.isArray(r['contractResult']) ? String(r['contractResult'][0] ?? '') : '';
    return {
      id: String(r['id']),
      blockNumber: r['blockNumber'],
      blockTimeStamp: Number(r['blockTimeStamp'] ?? 0),
      success: !failed,
      reason: failed ? decodeRevert(contractResult) : null,
      message: failed ? text(r['resMessage'] ?? receipt.result ?? 'FAILED') : '',
    };
  }

  /** Head block time, ms since epoch. */
  async headTime(signal?: AbortSignal): Promise<number> {
    const r = await this.#post('wallet/getnowblock', {}, signal);
    const header = r['block_header'] as { raw_data?: { timestamp?: unknown } } | undefined;
    const t = Number(header?.raw_data?.timestamp);
    if (!Number.isFinite(t)) throw new RegistryError('BAD_RESPONSE', `TRON node ${this.host} returned a block without a timestamp`);
    return t;
  }
}

/** The hex ("41…") address of a TRON private key (64 hex digits), or null if it is not one. */
export function addressOfPrivateKey(privateKey: string): string | null {
  return addressOf(privateKey)?.hex ?? null;
}
