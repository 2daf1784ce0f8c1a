/**
 * The registry's factories as the rest of the node sees them (index.ts exports these), without
 * tronweb. tronweb, with ethers and axios under it, costs about 50 MB of memory and over a second
 * to load (measured by `npm run bench -- memory`); the client that needs it (client.ts,
 * directory.ts) is imported at the first call that talks to the chain. A node that never looks a
 * name up never loads it. The options are checked at once, as the eager factories do, and the
 * signer's address is known at once (address.ts derives it without tronweb).
 */
import type { Identity } from '../crypto/index.js';
import { addressOfPrivateKey, parseTronAddress, type ParsedTronAddress } from './address.js';
import type { TronRegistryOptions } from './client.js';
import type { DirectoryOptions, ProviderDirectory } from './directory.js';
import type { IdentityRegistry } from './index.js';

/** What both factories check before anything loads; returns the signer, if a key was given. */
function checkOptions(what: string, opts: { fullHost?: string; fullHosts?: string[]; contractAddress: string; tronPrivateKey?: string }): ParsedTronAddress | null {
  const hosts = opts.fullHosts ?? (opts.fullHost ? [opts.fullHost] : []);
  if (hosts.length === 0) throw new TypeError(`${what}: give fullHost or fullHosts`);
  if (!parseTronAddress(opts.contractAddress)) throw new TypeError(`${what}: "${opts.contractAddress}" is not a TRON address`);
  if (opts.tronPrivateKey === undefined) return null;
  const signer = addressOfPrivateKey(opts.tronPrivateKey);
  if (!signer) throw new TypeError(`${what}: tronPrivateKey is not 64 hex digits`);
  return signer;
}

/** An implementation created at first use; closing before that closes it as soon as it exists. */
function deferred<T extends { close(): void }>(load: () => Promise<T>) {
  let loading: Promise<T> | undefined;
  let loaded: T | undefined;
  let closed = false;
  return {
    get(): Promise<T> {
      loading ??= load().then((impl) => {
        loaded = impl;
        if (closed) impl.close();
        return impl;
      });
      return loading;
    },
    now: (): T | undefined => loaded,
    close(): void {
      closed = true;
      loaded?.close();
    },
  };
}

export function createTronRegistry(opts: TronRegistryOptions): IdentityRegistry {
  const signer = checkOptions('createTronRegistry', opts);
  const impl = deferred(async () => (await import('./client.js')).createTronRegistry(opts));
  return {
    address: signer?.base58 ?? null,
    resolveName: (name, o) => impl.get().then((r) => r.resolveName(name, o)),
    resolveOwner: (owner, o) => impl.get().then((r) => r.resolveOwner(owner, o)),
    register: (identity: Identity, name, o) => impl.get().then((r) => r.register(identity, name, o)),
    update: (identity: Identity, o) => impl.get().then((r) => r.update(identity, o)),
    // Nothing is cached before the client exists.
    invalidate: (nameOrOwner) => impl.now()?.invalidate(nameOrOwner),
    close: () => impl.close(),
  };
}

export function createProviderDirectory(opts: DirectoryOptions): ProviderDirectory {
  const signer = checkOptions('createProviderDirectory', opts);
  const impl = deferred(async () => (await import('./directory.js')).createProviderDirectory(opts));
  return {
    address: signer?.base58 ?? null,
    list: (o) => impl.get().then((d) => d.list(o)),
    get: (owner, o) => impl.get().then((d) => d.get(owner, o)),
    byIdentity: (key, o) => impl.get().then((d) => d.byIdentity(key, o)),
    paidUntil: (owner, tag, o) => impl.get().then((d) => d.paidUntil(owner, tag, o)),
    register: (identity, terms, stake, o) => impl.get().then((d) => d.register(identity, terms, stake, o)),
    updateTerms: (terms, o) => impl.get().then((d) => d.updateTerms(terms, o)),
    deregister: (o) => impl.get().then((d) => d.deregister(o)),
    withdraw: (o) => impl.get().then((d) => d.withdraw(o)),
    pay: (owner, tag, periods, o) => impl.get().then((d) => d.pay(owner, tag, periods, o)),
    close: () => impl.close(),
  };
}
