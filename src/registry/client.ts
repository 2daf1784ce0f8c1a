/**
 * The TRON-backed IdentityRegistry: reads cross-checked across every configured host and verified
 * before they are returned or cached; writes (commit → wait → register, update) signed locally with
 * the account key and sent to the first host.
 */
import { Agent } from 'node:http';
import { bytesEqual, toHex } from '../bytes.js';
import { systemClock, type Clock } from '../clock.js';
import { secureRandomBytes, signRegistryRecord, type Identity, type RandomBytes, type RotationStatement, type OnionAddress } from '../crypto/index.js';
import { silentLogger, type Logger } from '../log.js';
import { calls, commitmentOf, decodeLookup, decodeLookupByOwner, decodeUint } from './abi.js';
import { parseTronAddress, type ParsedTronAddress, type TronAddress } from './address.js';
import { DEFAULT_CACHE_TTL_MS, TtlCache } from './cache.js';
import { RegistryError } from './errors.js';
import { decodeMetadata, encodeMetadata } from './metadata.js';
import { normalizeName } from './name.js';
import { verifyRecord, type RawRecord, type RecordContext, type VerifiedRecord } from './record.js';
import { ContractAccess } from './contract-access.js';
import { TronNode, addressOfPrivateKey } from './tron.js';
import type { IdentityRegistry, RegisterOptions, RegisterProgress, ResolveOptions, UpdateOptions, WriteResult } from './index.js';

export interface TronRegistryOptions {
  /** One TRON HTTP API endpoint ("http://127.0.0.1:9090", "https://nile.trongrid.io"). */
  fullHost?: string;
  /**
   * Several endpoints: every read goes to all of them and they must return the same bytes, else
   * ENDPOINTS_DISAGREE (and a host that does not answer fails the read: UNREACHABLE). Writes go to
   * the first.
   */
  fullHosts?: string[];
  /** The IdentityRegistry contract, base58 or 41-hex. */
  contractAddress: string;
  /** Hex secp256k1 key of the account that pays for and owns writes. Never logged. Reads need none. */
  tronPrivateKey?: string;
  /** HTTP(S) agent for every request, e.g. a SOCKS agent into Tor. Default: a keep-alive agent this client owns. */
  agent?: Agent;
  /** How long a verified record is served from memory, ms. Default 10 min; 0 disables the cache. */
  cacheTtlMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Per HTTP request, ms. Default 15 s. */
  timeoutMs?: number;
  /**
   * Read from solidified (irreversible, ~1 min behind on real networks) state via walletsolidity/*
   * rather than the head. Default true: a record that could still be rolled back is not trusted.
   */
  confirmedReads?: boolean;
  /** Maximum TRX (in sun) a write may burn. Default 150 TRX. */
  feeLimitSun?: number;
  /** How long a sent transaction may take to appear in a block, ms. Default 2 min. */
  confirmTimeoutMs?: number;
  /** Extra bound on the wait for the commitment to age, beyond minCommitmentAge, ms. Default 2 min. */
  commitSlackMs?: number;
  /** Poll interval while waiting for a block or a commitment, ms. Default 1 s (first poll at once). */
  pollIntervalMs?: number;
  /** For the commit-reveal secret. */
  randomBytes?: RandomBytes;
}

const DEFAULT_FEE_LIMIT_SUN = 150_000_000;

const REVERT_CODES: Record<string, RegistryError['code']> = {
  NAME_INVALID: 'NAME_INVALID', NAME_TAKEN: 'NAME_TAKEN', ALREADY_REGISTERED: 'ALREADY_REGISTERED',
  NOT_OWNER: 'NOT_OWNER', NO_RECORD: 'NOT_FOUND',
};

export function createTronRegistry(opts: TronRegistryOptions): IdentityRegistry {
  const hosts = opts.fullHosts ?? (opts.fullHost ? [opts.fullHost] : []);
  if (hosts.length === 0) throw new TypeError('createTronRegistry: give fullHost or fullHosts');
  const contract = parseTronAddress(opts.contractAddress);
  if (!contract) throw new TypeError(`createTronRegistry: "${opts.contractAddress}" is not a TRON address`);
  let signerHex: string | null = null;
  if (opts.tronPrivateKey !== undefined) {
    signerHex = addressOfPrivateKey(opts.tronPrivateKey);
    if (!signerHex) throw new TypeError('createTronRegistry: tronPrivateKey is not 64 hex digits');
  }
  return new TronRegistry(hosts, contract, signerHex, opts);
}

class TronRegistry implements IdentityRegistry {
  readonly address: TronAddress | null;
  readonly #access: ContractAccess;
  readonly #contract: ParsedTronAddress;
  readonly #signer: ParsedTronAddress | null;
  readonly #privateKey: string | undefined;
  readonly #ownedAgent: Agent | null;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #cache: TtlCache<VerifiedRecord>;
  readonly #commitSlackMs: number;
  readonly #pollMs: number;
  readonly #random: RandomBytes;
  #context: Promise<RecordContext & { minCommitmentAge: number }> | null = null;
  #closed = false;

  constructor(hosts: string[], contract: ParsedTronAddress, signerHex: string | null, opts: TronRegistryOptions) {
    this.#ownedAgent = opts.agent ? null : new Agent({ keepAlive: true, maxSockets: 8 });
    const agent = opts.agent ?? this.#ownedAgent!;
    this.#contract = contract;
    this.#signer = signerHex ? parseTronAddress(signerHex) : null;
    this.address = this.#signer?.base58 ?? null;
    this.#privateKey = opts.tronPrivateKey;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.logger ?? silentLogger();
    this.#cache = new TtlCache({ clock: this.#clock, ttlMs: opts.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS });
    this.#commitSlackMs = opts.commitSlackMs ?? 120_000;
    this.#pollMs = opts.pollIntervalMs ?? 1_000;
    this.#access = new ContractAccess({
      nodes: hosts.map((host) => new TronNode({ host, timeoutMs: opts.timeoutMs ?? 15_000, agent })),
      contract, clock: this.#clock, log: this.#log, confirmedReads: opts.confirmedReads ?? true,
      feeLimitSun: opts.feeLimitSun ?? DEFAULT_FEE_LIMIT_SUN, confirmTimeoutMs: opts.confirmTimeoutMs ?? 120_000,
      pollIntervalMs: this.#pollMs, revertCodes: REVERT_CODES,
    });
    this.#random = opts.randomBytes ?? secureRandomBytes;
  }

  // ---- reads ------------------------------------------------------------------------------------

  async resolveName(input: string, opts: ResolveOptions = {}): Promise<VerifiedRecord | null> {
    const name = normalizeName(input);
    const key = `name:${name}`;
    if (!opts.fresh) {
      const hit = this.#cache.get(key);
      if (hit) return hit;
    }
    const hex = await this.#access.readAll(calls.lookup(name), opts.signal);
    const raw = this.#access.decode(() => decodeLookup(name, hex));
    return raw ? this.#accept(raw, opts.signal) : null;
  }

  async resolveOwner(input: string, opts: ResolveOptions = {}): Promise<VerifiedRecord | null> {
    const owner = parseTronAddress(input);
    if (!owner) throw new TypeError(`"${input}" is not a TRON address`);
    const key = `owner:${owner.hex}`;
    if (!opts.fresh) {
      const hit = this.#cache.get(key);
      if (hit) return hit;
    }
    const hex = await this.#access.readAll(calls.lookupByOwner(owner.bytes), opts.signal);
    const raw = this.#access.decode(() => decodeLookupByOwner(owner.bytes, hex));
    return raw ? this.#accept(raw, opts.signal) : null;
  }

  invalidate(nameOrOwner: string): void {
    const owner = parseTronAddress(nameOrOwner);
    const key = owner ? `owner:${owner.hex}` : `name:${nameOrOwner.trim().toLowerCase()}`;
    const rec = this.#cache.get(key);
    this.#cache.delete(key);
    if (rec) {
      this.#cache.delete(`name:${rec.name}`);
      this.#cache.delete(`owner:${rec.ownerHex}`);
    }
  }

  async #accept(raw: RawRecord, signal: AbortSignal | undefined): Promise<VerifiedRecord> {
    const ctx = await this.#ctx(signal);
    let rec: VerifiedRecord;
    try {
      rec = verifyRecord(raw, ctx);
    } catch (err) {
      this.#log.warn({ name: raw.name, owner: toHex(raw.owner), err: (err as Error).message }, 'registry record rejected');
      throw err;
    }
    this.#cache.set(`name:${rec.name}`, rec);
    this.#cache.set(`owner:${rec.ownerHex}`, rec);
    return rec;
  }

  /** Chain id and commitment age, read once (cross-checked) and kept for the client's life. */
  #ctx(signal: AbortSignal | undefined): Promise<RecordContext & { minCommitmentAge: number }> {
    this.#context ??= (async () => {
      const chainId = decodeUint(await this.#access.readAll(calls.chainId(), signal));
      const minAge = decodeUint(await this.#access.readAll(calls.minCommitmentAge(), signal));
      return { chainId, contract: this.#contract.bytes, minCommitmentAge: Number(minAge) };
    })();
    const p = this.#context;
    // A failed fetch (host down, aborted) must not poison later calls.
    p.catch(() => {
      if (this.#context === p) this.#context = null;
    });
    return p;
  }

  // ---- writes -----------------------------------------------------------------------------------

  async register(identity: Identity, input: string, opts: RegisterOptions = {}): Promise<WriteResult> {
    const { signer, privateKey } = this.#requireKey();
    const name = normalizeName(input);
    const mailboxes = encodeMetadata({ mailboxes: opts.mailboxes ?? [], rotation: opts.rotation ?? null, hidden: opts.hidden ?? false });
    const { signal } = opts;
    const progress = (p: RegisterProgress) => opts.onProgress?.(p);
    const ctx = await this.#ctx(signal);
    const node = this.#access.writeNode;

    // Cheap checks first, so a doomed registration does not burn a commit.
    const taken = await this.#access.headRead(calls.lookup(name), (h) => decodeLookup(name, h), signal);
    if (taken) {
      if (bytesEqual(taken.owner, signer.bytes)) throw new RegistryError('ALREADY_REGISTERED', `${signer.base58} already owns "${name}"`);
      throw new RegistryError('NAME_TAKEN', `"${name}" is already registered to another account`);
    }
    const mine = await this.#access.headRead(calls.lookupByOwner(signer.bytes), (h) => decodeLookupByOwner(signer.bytes, h), signal);
    if (mine) throw new RegistryError('ALREADY_REGISTERED', `${signer.base58} already owns "${mine.name}"`);
    await this.#access.checkFunded(signer, signal);

    const secret = this.#random(32);
    const commitTx = await this.#access.sendAndWait('commit', calls.commit(commitmentOf(name, signer.bytes, secret)), privateKey, signal);
    progress({ stage: 'committed', txId: commitTx.id });
    this.#log.info({ name, txId: commitTx.id, minCommitmentAge: ctx.minCommitmentAge }, 'registry: commitment mined');

    const signature = signRegistryRecord(identity, {
      name, owner: signer.bytes, mailboxes, version: 1, chainId: ctx.chainId, contract: ctx.contract,
    });
    const call = calls.register({ name, identityKey: identity.identityKey, encryptionKey: identity.encryptionKey, mailboxes, signature, secret });

    // Wait until the commitment is old enough on chain. Our clock and the chain's may disagree, so
    // the dry run (executed against the head block) has the last word.
    const readyAt = commitTx.blockTimeStamp + ctx.minCommitmentAge * 1000;
    const deadline = this.#clock.now() + ctx.minCommitmentAge * 1000 + this.#commitSlackMs;
    if (ctx.minCommitmentAge > 0) progress({ stage: 'waiting', txId: commitTx.id, readyAt });
    // Bounded by minCommitmentAge itself, so a local clock far behind the chain's cannot stall us.
    await this.#access.sleep(Math.min(readyAt - this.#clock.now(), ctx.minCommitmentAge * 1000), signal);
    for (;;) {
      const dry = await node.constantCall(this.#contract.hex, call, { from: signer.hex, signal });
      if (dry.ok) break;
      if (dry.reason !== 'COMMITMENT_TOO_NEW') throw this.#access.revertError(`register "${name}"`, dry.reason, dry.message);
      if (this.#clock.now() >= deadline) throw new RegistryError('TIMEOUT', `the commitment for "${name}" did not age in time`);
      await this.#access.sleep(this.#pollMs, signal);
    }

    const tx = await this.#access.sendAndWait(`register "${name}"`, call, privateKey, signal);
    this.invalidate(name);
    this.invalidate(signer.hex);
    progress({ stage: 'registered', txId: tx.id });
    this.#log.info({ name, owner: signer.base58, txId: tx.id }, 'registry: name registered');
    return { txId: tx.id, version: 1 };
  }

  async update(identity: Identity, opts: UpdateOptions = {}): Promise<WriteResult> {
    const { signer, privateKey } = this.#requireKey();
    const { signal } = opts;
    const ctx = await this.#ctx(signal);
    let current: RawRecord | null;
    if (opts.name !== undefined) {
      const name = normalizeName(opts.name);
      current = await this.#access.headRead(calls.lookup(name), (h) => decodeLookup(name, h), signal);
      if (!current) throw new RegistryError('NOT_FOUND', `"${name}" is not registered`);
      if (!bytesEqual(current.owner, signer.bytes)) throw new RegistryError('NOT_OWNER', `"${name}" is not owned by ${signer.base58}`);
    } else {
      current = await this.#access.headRead(calls.lookupByOwner(signer.bytes), (h) => decodeLookupByOwner(signer.bytes, h), signal);
      if (!current) throw new RegistryError('NOT_FOUND', `${signer.base58} owns no name`);
    }
    const name = current.name;
    let previous: { mailboxes: OnionAddress[]; rotation: RotationStatement | null; hidden: boolean } = { mailboxes: [], rotation: null, hidden: false };
    try {
      previous = decodeMetadata(current.mailboxes);
    } catch {
      // The old metadata is unreadable; the caller's values (or none) replace it.
    }
    // Keep a published rotation statement only while it still leads to the key being published.
    const keptRotation = previous.rotation && bytesEqual(previous.rotation.newIdentity, identity.identityKey) ? previous.rotation : null;
    const mailboxes = encodeMetadata({
      mailboxes: opts.mailboxes ?? previous.mailboxes,
      rotation: opts.rotation === undefined ? keptRotation : opts.rotation,
      hidden: opts.hidden ?? previous.hidden,
    });
    const version = current.version + 1;
    const signature = signRegistryRecord(identity, { name, owner: signer.bytes, mailboxes, version, chainId: ctx.chainId, contract: ctx.contract });
    const call = calls.update({ identityKey: identity.identityKey, encryptionKey: identity.encryptionKey, mailboxes, version, signature });
    await this.#access.checkFunded(signer, signal);
    await this.#access.dryRun(`update "${name}"`, call, signer.hex, signal);
    const tx = await this.#access.sendAndWait(`update "${name}"`, call, privateKey, signal);
    this.invalidate(name);
    this.invalidate(signer.hex);
    this.#log.info({ name, version, txId: tx.id }, 'registry: record updated');
    return { txId: tx.id, version };
  }

  #requireKey(): { signer: ParsedTronAddress; privateKey: string } {
    this.#access.checkOpen();
    if (!this.#signer || this.#privateKey === undefined) throw new RegistryError('NO_KEY', 'this registry client has no TRON private key; writes need one');
    return { signer: this.#signer, privateKey: this.#privateKey };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#access.close();
    this.#cache.clear();
    this.#ownedAgent?.destroy();
  }
}
