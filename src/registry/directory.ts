/**
 * The TRON-backed mailbox-provider directory (deploy/contracts/ProviderDirectory.sol): reads are
 * cross-checked across every configured host and each listing's binding signature is verified
 * before it is returned; writes (list a provider with its stake, new terms, leave, withdraw, pay)
 * are signed locally with the account key and sent to the first host, each after a dry run so a
 * doomed call costs no fee.
 */
import { Agent } from 'node:http';
import { systemClock, type Clock } from '../clock.js';
import { onionAddress, signProviderBinding, verifyProviderBinding, type Identity, type OnionAddress } from '../crypto/index.js';
import { silentLogger, type Logger } from '../log.js';
import { parseTronAddress, type ParsedTronAddress, type TronAddress } from './address.js';
import { ContractAccess } from './contract-access.js';
import { decodeAddress, decodeAddressList, decodeProvider, decodeUint256, directoryCalls, trc20Calls, type DirectoryStatus, type RawListing } from './directory-abi.js';
import { RegistryError } from './errors.js';
import { TronNode, addressOfPrivateKey } from './tron.js';

/** A provider's terms. `token` null: priced in TRX and `price` is in sun per 30 days; 0 = free. */
export interface ProviderTerms {
  retentionDays: number;
  quotaMB: number;
  token: TronAddress | null;
  price: bigint;
}

/** A verified listing. */
export interface ProviderListing {
  owner: TronAddress;
  ownerHex: string;
  identityKey: Uint8Array;
  onion: OnionAddress;
  status: Exclude<DirectoryStatus, 'none'>;
  terms: ProviderTerms;
  /** Locked stake, sun. */
  stakeSun: bigint;
  /** When a leaving provider's stake can be withdrawn, ms since epoch; null while listed. */
  withdrawableAt: number | null;
  version: number;
}

export interface DirectoryPage {
  providers: ProviderListing[];
  /** Listings whose binding does not verify (someone else's key, another chain): never offered. */
  rejected: { owner: TronAddress; reason: string }[];
  /** Owners ever registered (the paging space). */
  total: number;
}

export interface Payment {
  txId: string;
  amount: bigint;
  token: TronAddress | null;
  /** ms since epoch. */
  paidUntil: number;
}

type Opts = { signal?: AbortSignal };

export interface ProviderDirectory {
  /** The signing account, or null for a read-only client. */
  readonly address: TronAddress | null;
  /** Listed providers among owners [offset, offset+limit); `includeLeaving` adds deregistered ones. */
  list(opts?: Opts & { offset?: number; limit?: number; includeLeaving?: boolean }): Promise<DirectoryPage>;
  /** One owner's listing (listed or leaving), verified; null if none. Throws BAD_RECORD if the binding fails. */
  get(owner: string, opts?: Opts): Promise<ProviderListing | null>;
  /** The listing of the node with this identity key, if one is listed. */
  byIdentity(identityKey: Uint8Array, opts?: Opts): Promise<ProviderListing | null>;
  /** When `tag`'s subscription with `owner` is paid until, ms since epoch; 0 if never paid. */
  paidUntil(owner: string, tag: Uint8Array, opts?: Opts): Promise<number>;
  /** Lists `identity`'s node under the signing account with `stakeSun` locked. */
  register(identity: Identity, terms: ProviderTerms, stakeSun: bigint, opts?: Opts): Promise<{ txId: string }>;
  updateTerms(terms: ProviderTerms, opts?: Opts): Promise<{ txId: string }>;
  deregister(opts?: Opts): Promise<{ txId: string }>;
  withdraw(opts?: Opts): Promise<{ txId: string }>;
  /**
   * Pays `periods` × 30 days to `owner` for `tag`, in the provider's currency at its listed price
   * (a TRC-20 allowance is raised first when short). `maxPrice` guards against terms changed since
   * the user looked: a higher price is refused with PRICE_CHANGED before anything is sent.
   */
  pay(owner: string, tag: Uint8Array, periods: number, opts?: Opts & { maxPrice?: bigint }): Promise<Payment>;
  close(): void;
}

export interface DirectoryOptions {
  fullHost?: string;
  fullHosts?: string[];
  /** The ProviderDirectory contract, base58 or 41-hex. */
  contractAddress: string;
  tronPrivateKey?: string;
  agent?: Agent;
  clock?: Clock;
  logger?: Logger;
  timeoutMs?: number;
  confirmedReads?: boolean;
  feeLimitSun?: number;
  confirmTimeoutMs?: number;
  pollIntervalMs?: number;
}

const REVERT_CODES: Record<string, RegistryError['code']> = { NOT_LISTED: 'NOT_FOUND', ALREADY_LISTED: 'ALREADY_REGISTERED', KEY_TAKEN: 'NAME_TAKEN' };
const MAX_PAGE = 100;

export function createProviderDirectory(opts: DirectoryOptions): ProviderDirectory {
  const hosts = opts.fullHosts ?? (opts.fullHost ? [opts.fullHost] : []);
  if (hosts.length === 0) throw new TypeError('createProviderDirectory: give fullHost or fullHosts');
  const contract = parseTronAddress(opts.contractAddress);
  if (!contract) throw new TypeError(`createProviderDirectory: "${opts.contractAddress}" is not a TRON address`);
  let signer: ParsedTronAddress | null = null;
  if (opts.tronPrivateKey !== undefined) {
    const hex = addressOfPrivateKey(opts.tronPrivateKey);
    if (!hex) throw new TypeError('createProviderDirectory: tronPrivateKey is not 64 hex digits');
    signer = parseTronAddress(hex);
  }
  return new TronProviderDirectory(hosts, contract, signer, opts);
}

function parseOwner(input: string): ParsedTronAddress {
  const a = parseTronAddress(input);
  if (!a) throw new TypeError(`"${input}" is not a TRON address`);
  return a;
}

class TronProviderDirectory implements ProviderDirectory {
  readonly address: TronAddress | null;
  readonly #access: ContractAccess;
  readonly #signer: ParsedTronAddress | null;
  readonly #privateKey: string | undefined;
  readonly #ownedAgent: Agent | null;
  readonly #log: Logger;
  #chainId: Promise<bigint> | null = null;

  constructor(hosts: string[], contract: ParsedTronAddress, signer: ParsedTronAddress | null, opts: DirectoryOptions) {
    this.#ownedAgent = opts.agent ? null : new Agent({ keepAlive: true, maxSockets: 8 });
    const agent = opts.agent ?? this.#ownedAgent!;
    this.#signer = signer;
    this.address = signer?.base58 ?? null;
    this.#privateKey = opts.tronPrivateKey;
    this.#log = opts.logger ?? silentLogger();
    this.#access = new ContractAccess({
      nodes: hosts.map((host) => new TronNode({ host, timeoutMs: opts.timeoutMs ?? 15_000, agent })),
      contract, clock: opts.clock ?? systemClock, log: this.#log, confirmedReads: opts.confirmedReads ?? true,
      feeLimitSun: opts.feeLimitSun ?? 150_000_000, confirmTimeoutMs: opts.confirmTimeoutMs ?? 120_000,
      pollIntervalMs: opts.pollIntervalMs ?? 1_000, revertCodes: REVERT_CODES,
    });
  }

  #chain(signal: AbortSignal | undefined): Promise<bigint> {
    this.#chainId ??= this.#access.readAll(directoryCalls.chainId(), signal).then(decodeUint256);
    const p = this.#chainId;
    p.catch(() => {
      if (this.#chainId === p) this.#chainId = null;
    });
    return p;
  }

  async #listing(owner: ParsedTronAddress, raw: RawListing, signal: AbortSignal | undefined): Promise<ProviderListing> {
    const chainId = await this.#chain(signal);
    try {
      verifyProviderBinding({ owner: owner.bytes, identityKey: raw.identityKey, chainId, contract: this.#access.contract.bytes }, raw.bindingSig);
    } catch (err) {
      throw new RegistryError('BAD_RECORD', `the provider listing of ${owner.base58} is not bound to its onion by the onion's key`, { cause: err });
    }
    const token = raw.terms.token ? parseTronAddress(raw.terms.token)!.base58 : null;
    return {
      owner: owner.base58, ownerHex: owner.hex, identityKey: raw.identityKey, onion: onionAddress(raw.identityKey),
      status: raw.status as ProviderListing['status'],
      terms: { retentionDays: raw.terms.retentionDays, quotaMB: raw.terms.quotaMB, token, price: raw.terms.price },
      stakeSun: raw.stake, withdrawableAt: raw.withdrawableAt ? raw.withdrawableAt * 1000 : null, version: raw.version,
    };
  }

  async #raw(owner: ParsedTronAddress, signal: AbortSignal | undefined): Promise<RawListing> {
    const hex = await this.#access.readAll(directoryCalls.provider(owner.bytes), signal);
    return this.#access.decode(() => decodeProvider(hex));
  }

  async get(input: string, opts: Opts = {}): Promise<ProviderListing | null> {
    const owner = parseOwner(input);
    const raw = await this.#raw(owner, opts.signal);
    return raw.status === 'none' ? null : this.#listing(owner, raw, opts.signal);
  }

  async byIdentity(identityKey: Uint8Array, opts: Opts = {}): Promise<ProviderListing | null> {
    const hex = await this.#access.readAll(directoryCalls.ownerOfKey(identityKey), opts.signal);
    const owner = this.#access.decode(() => decodeAddress(hex));
    return owner ? this.get(owner.hex, opts) : null;
  }

  async list(opts: Opts & { offset?: number; limit?: number; includeLeaving?: boolean } = {}): Promise<DirectoryPage> {
    const { signal } = opts;
    const total = Number(decodeUint256(await this.#access.readAll(directoryCalls.ownerCount(), signal)));
    const owners: ParsedTronAddress[] = [];
    const offset = Math.max(0, opts.offset ?? 0);
    const want = Math.min(opts.limit ?? MAX_PAGE, MAX_PAGE);
    const page = await this.#access.readAll(directoryCalls.ownersPage(offset, want), signal);
    owners.push(...this.#access.decode(() => decodeAddressList(page)));
    const out: DirectoryPage = { providers: [], rejected: [], total };
    for (const owner of owners) {
      const raw = await this.#raw(owner, signal);
      if (raw.status === 'none' || (raw.status === 'leaving' && !opts.includeLeaving)) continue;
      try {
        out.providers.push(await this.#listing(owner, raw, signal));
      } catch (err) {
        if (!(err instanceof RegistryError) || err.code !== 'BAD_RECORD') throw err;
        this.#log.warn({ owner: owner.base58 }, 'provider listing rejected: binding does not verify');
        out.rejected.push({ owner: owner.base58, reason: err.message });
      }
    }
    return out;
  }

  async paidUntil(owner: string, tag: Uint8Array, opts: Opts = {}): Promise<number> {
    const hex = await this.#access.readAll(directoryCalls.paidUntil(parseOwner(owner).bytes, tag), opts.signal);
    return Number(decodeUint256(hex)) * 1000;
  }

  #requireKey(): { signer: ParsedTronAddress; privateKey: string } {
    this.#access.checkOpen();
    if (!this.#signer || this.#privateKey === undefined) throw new RegistryError('NO_KEY', 'this directory client has no TRON private key; writes need one');
    return { signer: this.#signer, privateKey: this.#privateKey };
  }

  async #write(what: string, call: ReturnType<typeof directoryCalls.deregister>, signal: AbortSignal | undefined, callValue = 0): Promise<{ txId: string }> {
    const { signer, privateKey } = this.#requireKey();
    await this.#access.checkFunded(signer, signal, callValue + 1);
    await this.#access.dryRun(what, call, signer.hex, signal, callValue);
    const tx = await this.#access.sendAndWait(what, call, privateKey, signal, { callValue });
    this.#log.info({ what, txId: tx.id }, 'provider directory: transaction mined');
    return { txId: tx.id };
  }

  async register(identity: Identity, terms: ProviderTerms, stakeSun: bigint, opts: Opts = {}): Promise<{ txId: string }> {
    const { signer } = this.#requireKey();
    const chainId = await this.#chain(opts.signal);
    const sig = signProviderBinding(identity, { owner: signer.bytes, chainId, contract: this.#access.contract.bytes });
    return this.#write('list provider', directoryCalls.register(identity.identityKey, sig, rawTerms(terms)), opts.signal, safeSun(stakeSun));
  }

  updateTerms(terms: ProviderTerms, opts: Opts = {}): Promise<{ txId: string }> {
    return this.#write('update provider terms', directoryCalls.updateTerms(rawTerms(terms)), opts.signal);
  }

  deregister(opts: Opts = {}): Promise<{ txId: string }> {
    return this.#write('deregister provider', directoryCalls.deregister(), opts.signal);
  }

  withdraw(opts: Opts = {}): Promise<{ txId: string }> {
    return this.#write('withdraw stake', directoryCalls.withdraw(), opts.signal);
  }

  async pay(input: string, tag: Uint8Array, periods: number, opts: Opts & { maxPrice?: bigint } = {}): Promise<Payment> {
    const { signer, privateKey } = this.#requireKey();
    const { signal } = opts;
    if (!Number.isInteger(periods) || periods < 1 || periods > 24) throw new RangeError('periods must be a whole number from 1 to 24');
    const owner = parseOwner(input);
    const listing = await this.get(owner.hex, { signal });
    if (!listing || listing.status !== 'listed') throw new RegistryError('NOT_FOUND', `${owner.base58} lists no provider`);
    const { price, token } = listing.terms;
    if (price === 0n) throw new RegistryError('TX_FAILED', `${owner.base58} is a free provider: there is nothing to pay`, { reason: 'FREE_PROVIDER' });
    if (opts.maxPrice !== undefined && price > opts.maxPrice) {
      throw new RegistryError('PRICE_CHANGED', `${owner.base58} now asks ${price} per 30 days, more than the ${opts.maxPrice} agreed`);
    }
    const amount = price * BigInt(periods);
    let txId: string;
    if (token === null) {
      txId = (await this.#write('pay provider', directoryCalls.pay(owner.bytes, tag, periods), signal, safeSun(amount))).txId;
    } else {
      const tokenAddr = parseTronAddress(token)!;
      const node = this.#access.writeNode;
      const allowance = await node.constantCall(tokenAddr.hex, trc20Calls.allowance(signer.bytes, this.#access.contract.bytes), { signal });
      const have = allowance.ok ? decodeUint256(allowance.result) : 0n;
      if (have < amount) {
        await this.#access.sendAndWait('approve token', trc20Calls.approve(this.#access.contract.bytes, amount), privateKey, signal, { to: tokenAddr.hex });
      }
      txId = (await this.#write('pay provider in tokens', directoryCalls.payToken(owner.bytes, tag, periods, tokenAddr.bytes), signal)).txId;
    }
    return { txId, amount, token, paidUntil: await this.paidUntilHead(owner, tag, signal) };
  }

  /** paid-until at the head, right after our own payment (solidified state may lag it). */
  async paidUntilHead(owner: ParsedTronAddress, tag: Uint8Array, signal: AbortSignal | undefined): Promise<number> {
    return this.#access.headRead(directoryCalls.paidUntil(owner.bytes, tag), (h) => Number(decodeUint256(h)) * 1000, signal);
  }

  close(): void {
    this.#access.close();
    this.#ownedAgent?.destroy();
  }
}

function rawTerms(t: ProviderTerms) {
  if (!Number.isInteger(t.retentionDays) || t.retentionDays < 1 || t.retentionDays > 365) throw new RangeError('retentionDays must be 1..365');
  if (!Number.isInteger(t.quotaMB) || t.quotaMB < 1 || t.quotaMB > 0xffff_ffff) throw new RangeError('quotaMB must be a positive whole number');
  if (t.price < 0n) throw new RangeError('price must not be negative');
  const token = t.token === null ? null : parseTronAddress(t.token);
  if (t.token !== null && !token) throw new TypeError(`"${t.token}" is not a TRON address`);
  return { retentionDays: t.retentionDays, quotaMB: t.quotaMB, token: token?.bytes ?? null, price: t.price };
}

function safeSun(v: bigint): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('TRX amount out of range');
  return Number(v);
}
