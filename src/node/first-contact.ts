/**
 * First contact while the recipient is offline (PROTOCOL.md §14.8), both sides:
 *
 *   keeping (ours):  at subscribe, PUT_BUNDLE with `replace` and `perProvider` fresh one-time
 *                    prekeys; at each fetch round (the courier's connection), PUT_BUNDLE of our
 *                    current bundle without prekeys (a rotated signed prekey or a changed provider
 *                    list reaches the provider within a round) → how many prekeys it holds → below
 *                    `lowMark`, a second PUT tops it up to `perProvider`. Prekeys put there are
 *                    marked handed out in our own store first, so an INIT using one opens.
 *   fetching (a peer's): the providers its newest bundle listed (peer_mailboxes) or, for a peer we
 *                    never had a bundle of, the ones its verified registry record lists → GET_BUNDLE
 *                    at each in turn until one answers with a bundle answer that verifies as the
 *                    peer's (signed by the identity key we resolved it to).
 */
import { toHex } from '../bytes.js';
import type { Identity } from '../crypto/index.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Envelopes } from '../pipeline/index.js';
import type { MailboxClient } from '../provider/index.js';
import type { IdentityRegistry } from '../registry/index.js';
import type { Store } from '../store/index.js';

export interface FirstContactOptions {
  identity: Identity;
  store: Store;
  envelopes: Pick<Envelopes, 'checkBundleAnswer' | 'ownBundleAnswer' | 'handOutPrekeys'>;
  /** For a peer we have no bundle of: its registry record's providers (when it is a contact by name). */
  registry?: IdentityRegistry;
  /** A peer's bundle answer from one provider (the courier's GET_BUNDLE), unverified. */
  getBundle: (provider: string, identityKey: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;
  logger: Logger;
  /** One-time prekeys kept at each of our providers. Default 20. */
  perProvider?: number;
  /** Fewer than this left at a provider: topped up. Default 5. */
  lowMark?: number;
  /** Providers asked for one peer's bundle, at most. Default 4. */
  maxAsked?: number;
}

export class FirstContact {
  readonly #o: FirstContactOptions;

  constructor(o: FirstContactOptions) {
    this.#o = o;
  }

  /**
   * Keeps our bundle at our provider on `client`'s connection; with `fresh` (at subscribe), replaces
   * the prekeys it held with a new batch. Resolves with how many prekeys it holds for us then, or
   * null when our envelopes keep no prekeys to hand out.
   */
  async keep(client: MailboxClient, opts: { signal: AbortSignal; timeoutMs: number }, fresh = false): Promise<number | null> {
    const env = this.#o.envelopes;
    if (!env.ownBundleAnswer || !env.handOutPrekeys) return null;
    const own = env.ownBundleAnswer();
    // A bundle answer without a one-time prekey is the bundle and one zero byte (PROTOCOL.md §3).
    const bundle = own.subarray(0, own.length - 1);
    const per = this.#o.perProvider ?? 20;
    const id = this.#o.identity;
    if (fresh) return client.putBundle(id, bundle, env.handOutPrekeys(per), true, opts);
    const held = await client.putBundle(id, bundle, [], false, opts);
    if (held >= (this.#o.lowMark ?? 5)) return held;
    return client.putBundle(id, bundle, env.handOutPrekeys(per - held), false, opts);
  }

  /** `peer`'s bundle answer from one of its providers, verified as its own; null when none had one. */
  async bundleFor(peer: Uint8Array, signal: AbortSignal): Promise<Uint8Array | null> {
    const providers = await this.#providersOf(toHex(peer), signal);
    for (const provider of providers.slice(0, this.#o.maxAsked ?? 4)) {
      if (signal.aborted) return null;
      try {
        const answer = await this.#o.getBundle(provider, peer, signal);
        this.#o.envelopes.checkBundleAnswer(answer, peer);
        this.#o.logger.info({ provider }, 'first contact: the recipient looks offline; got its bundle from its mailbox provider');
        return answer;
      } catch (err) {
        this.#o.logger.info({ provider, err: describeError(err) }, 'no usable bundle from this provider of the recipient; trying the next');
      }
    }
    return null;
  }

  async #providersOf(peer: string, signal: AbortSignal): Promise<string[]> {
    const known = this.#o.store.deposits.peerMailboxes(peer);
    if (known.length > 0) return known;
    const name = this.#o.store.getContact(peer)?.registryName;
    if (!name || !this.#o.registry) return [];
    try {
      const rec = await this.#o.registry.resolveName(name, { signal });
      return rec && toHex(rec.identityKey) === peer ? [...rec.mailboxes] : [];
    } catch (err) {
      this.#o.logger.info({ err: describeError(err) }, 'could not read the recipient\'s providers from the registry');
      return [];
    }
  }
}
