/**
 * What every onionpost contract client does with its TRON nodes, in one place: cross-checked view
 * calls across every configured host, head reads on the write host, a funded-signer check, and
 * send-then-wait-for-the-block with the revert reason decoded. Used by the identity registry and by
 * the provider directory; both wrap it with their own record decoding and error codes.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { EncodedCall } from './abi.js';
import type { ParsedTronAddress } from './address.js';
import { RegistryError } from './errors.js';
import type { TronNode, TxInfo } from './tron.js';

export interface ContractAccessOptions {
  nodes: TronNode[];
  contract: ParsedTronAddress;
  clock: Clock;
  log: Logger;
  /** Reads from solidified state (walletsolidity/*) rather than the head. */
  confirmedReads: boolean;
  feeLimitSun: number;
  /** How long a sent transaction may take to appear in a block, ms. */
  confirmTimeoutMs: number;
  /** Pause between polls for a block, ms. */
  pollIntervalMs: number;
  /** Revert strings that map to their own error code; anything else is TX_FAILED. */
  revertCodes?: Partial<Record<string, RegistryError['code']>>;
}

export class ContractAccess {
  readonly contract: ParsedTronAddress;
  readonly #o: ContractAccessOptions;
  #closed = false;

  constructor(o: ContractAccessOptions) {
    this.#o = o;
    this.contract = o.contract;
  }

  get writeNode(): TronNode {
    return this.#o.nodes[0]!;
  }

  revertError(what: string, reason: string | null, message: string): RegistryError {
    const code = (reason && this.#o.revertCodes?.[reason]) || 'TX_FAILED';
    return new RegistryError(code, `${what} failed: ${reason ?? message}`, reason ? { reason } : undefined);
  }

  decode<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new RegistryError('BAD_RESPONSE', 'the contract returned data that does not decode', { cause: err });
    }
  }

  /** One view call on every host; all must succeed with identical bytes. Returns the result hex. */
  async readAll(call: EncodedCall, signal: AbortSignal | undefined): Promise<string> {
    this.checkOpen();
    const started = performance.now();
    const nodes = this.#o.nodes;
    const settled = await Promise.allSettled(
      nodes.map((n) => n.constantCall(this.contract.hex, call, { confirmed: this.#o.confirmedReads, signal })),
    );
    const results: string[] = [];
    for (const [i, s] of settled.entries()) {
      if (s.status === 'rejected') throw s.reason;
      if (!s.value.ok) {
        throw new RegistryError('BAD_RESPONSE', `${call.selector} reverted on ${nodes[i]!.host}: ${s.value.reason ?? s.value.message}`);
      }
      results.push(s.value.result);
    }
    const first = results[0]!;
    const odd = results.findIndex((r) => r !== first);
    if (odd > 0) {
      throw new RegistryError('ENDPOINTS_DISAGREE', `${nodes[0]!.host} and ${nodes[odd]!.host} return different answers to ${call.selector}`);
    }
    this.#o.log.debug({ call: call.selector, hosts: nodes.length, ms: Math.round(performance.now() - started) }, 'contract read');
    return first;
  }

  /** A view call on the write host at the head (writes race the head, not solidified state). */
  async headRead<T>(call: EncodedCall, decode: (hex: string) => T, signal: AbortSignal | undefined, from?: string): Promise<T> {
    this.checkOpen();
    const r = await this.writeNode.constantCall(this.contract.hex, call, { signal, ...(from ? { from } : {}) });
    if (!r.ok) throw new RegistryError('BAD_RESPONSE', `${call.selector} reverted: ${r.reason ?? r.message}`);
    return this.decode(() => decode(r.result));
  }

  /** Runs `call` as `from` against the head without sending it; throws its revert as a typed error. */
  async dryRun(what: string, call: EncodedCall, from: string, signal: AbortSignal | undefined, callValue = 0): Promise<void> {
    const dry = await this.writeNode.constantCall(this.contract.hex, call, { from, signal, callValue });
    if (!dry.ok) throw this.revertError(what, dry.reason, dry.message);
  }

  async checkFunded(signer: ParsedTronAddress, signal: AbortSignal | undefined, needSun = 1): Promise<void> {
    const balance = await this.writeNode.balance(signer.hex, signal);
    if (!balance || balance < needSun) {
      throw new RegistryError('UNFUNDED', `TRON account ${signer.base58} has ${balance ?? 0} sun; the transaction needs ${needSun} plus fees`);
    }
  }

  /** Sends `call` (to this contract, or `to`) and waits until it is in a block; throws its revert as a typed error. */
  async sendAndWait(what: string, call: EncodedCall, privateKey: string, signal: AbortSignal | undefined, opts: { callValue?: number; to?: string } = {}): Promise<TxInfo> {
    this.checkOpen();
    const node = this.writeNode;
    const txId = await node.send(opts.to ?? this.contract.hex, call, privateKey, this.#o.feeLimitSun, signal, opts.callValue ?? 0);
    const deadline = this.#o.clock.now() + this.#o.confirmTimeoutMs;
    for (;;) {
      const info = await node.txInfo(txId, signal);
      if (info) {
        if (!info.success) throw this.revertError(what, info.reason, info.message);
        return info;
      }
      if (this.#o.clock.now() >= deadline) throw new RegistryError('TIMEOUT', `${what}: transaction ${txId} not in a block after ${this.#o.confirmTimeoutMs} ms`);
      await this.sleep(this.#o.pollIntervalMs, signal);
    }
  }

  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new RegistryError('ABORTED', 'contract operation aborted', { cause: signal.reason }));
    if (ms <= 0) return Promise.resolve();
    const clock = this.#o.clock;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clock.clearTimeout(timer);
        reject(new RegistryError('ABORTED', 'contract operation aborted', { cause: signal?.reason }));
      };
      const timer = clock.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  checkOpen(): void {
    if (this.#closed) throw new RegistryError('ABORTED', 'contract client is closed');
  }

  close(): void {
    this.#closed = true;
  }
}
