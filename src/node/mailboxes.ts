/**
 * The user's side of mailbox providers (issue 11, items 2 and 10): subscribing at a provider,
 * remembering it, and listing our providers in the bundle we hand out. Depositing and fetching are
 * courier.ts's; per-contact queues (handed out inside sessions) come in a later slice.
 *
 *   add(onion):   parse → limit → dial <onion>/mailbox/v1 → SUBSCRIBE (signed by our identity key,
 *                 with our subscriber tag for that provider) → TERMS verified against the key the
 *                 onion is derived from → stored. Any failure stores nothing.
 *   remove(onion): forgotten locally (the mailbox protocol has no unsubscribe; the provider drops
 *                 the account when it holds nothing and its retention passes).
 *   bundle:       our bundle (BUNDLE answers and the one inside our INITs) lists our providers: the
 *                 session layer asks onions() each time it signs it.
 *   public queue: add() also creates our public queue there (PROTOCOL.md §14.2), where senders
 *                 leave mail while we are offline (courier.ts).
 *   account:      checkAccount() asks ACCOUNT (PROTOCOL.md §14.4) on the courier's connection at each
 *                 fetch round, and add() once after subscribing: paid until, held, quota are kept
 *                 with the provider. A priced provider whose paid-until is LAPSE_WARNING_MS away or
 *                 less, or past, is a warning in `status` and in the list, and an event
 *                 `mailbox.lapsing` (once a day per provider) — before it stops serving us.
 *
 * The subscriber tag is sent to every provider, priced or free: it is HMAC(our secret, provider
 * key), so it tells a provider nothing it could link elsewhere, and a priced one finds the payment
 * recorded under it (crypto/provider.ts) without the node having to ask the chain which kind it is.
 */
import { toHex } from '../bytes.js';
import type { Clock } from '../clock.js';
import {
  MAX_MAILBOXES, parseOnionAddress, publicQueueId, publicQueueReadCap, subscriberTag, subscriberTagKey, type Identity, type OnionAddress,
} from '../crypto/index.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { describeError } from '../errors.js';
import { MAILBOX_PATH, MailboxClient, MailboxErrorCode, ProviderError, mailboxErrorName, type AccountStatus, type RequestOpts } from '../provider/index.js';
import type { MailboxProvider, ProviderAccount, Store } from '../store/index.js';
import { StoreError } from '../store/index.js';
import { TransportError } from '../transport/index.js';
import { MailboxesError, type MailboxesErrorCode } from './errors.js';
import type { PeerNetwork } from './network.js';
import type { ReputationView } from './provider-scores.js';

/** What the API, the CLI and `status` show of a provider. */
export interface MailboxView {
  onion: string;
  identityKey: string;
  terms: { retentionMs: number; quotaBytes: number; time: number; signature: string };
  subscribedAt: number;
  lastFetchAt: number | null;
  /** The first failed fetch since the last good one; null: fetching works (or never failed). */
  fetchFailingSince: number | null;
  /** What this node measured of it (provider-scores.ts); absent where the node does not score. */
  reputation?: ReputationView;
  /** What the provider last said of our account (ACCOUNT_STATUS; these are null until it answered once): paid until, ms since the epoch; 0: a free provider. */
  paidUntil: number | null;
  /** How long past paidUntil it still holds and hands out our mail, ms. */
  graceMs: number | null;
  /** What it holds for us (envelopes, bytes) and the most it will (bytes). */
  held: { count: number; bytes: number; quotaBytes: number } | null;
  /** When we last asked it, ms since the epoch. */
  accountCheckedAt: number | null;
  /** A priced provider whose payment ends within 7 days or has ended: what to do, in words. */
  warning: string | null;
}

export function mailboxView(p: MailboxProvider, now: number, reputation?: ReputationView): MailboxView {
  const a = p.account;
  return {
    onion: p.onion, identityKey: p.identityKey,
    terms: { retentionMs: p.terms.retentionMs, quotaBytes: p.terms.quotaBytes, time: p.terms.time, signature: toHex(p.terms.sig) },
    subscribedAt: p.subscribedAt, lastFetchAt: p.lastFetchAt, fetchFailingSince: p.fetchFailingSince,
    paidUntil: a?.paidUntil ?? null, graceMs: a?.graceMs ?? null,
    held: a ? { count: a.heldCount, bytes: a.heldBytes, quotaBytes: a.quotaBytes } : null, accountCheckedAt: a?.checkedAt ?? null,
    warning: lapseOf(p.onion, a, now)?.message ?? null,
    ...(reputation ? { reputation } : {}),
  };
}

/** How far ahead of a priced provider's paid-until date the user is warned, ms. */
export const LAPSE_WARNING_MS = 7 * 24 * 3600 * 1000;
/** mailbox.lapsing is emitted at most this often per provider, ms. */
export const LAPSE_EVENT_EVERY_MS = 24 * 3600 * 1000;

/**
 * Where a priced provider's payment stands when it needs the user:
 *   due      paid-until is LAPSE_WARNING_MS away or less
 *   grace    paid-until passed; the provider still serves until paid-until + grace
 *   lapsed   past that too: DEPOSIT and FETCH are NOT_PAID
 */
export interface Lapse {
  state: 'due' | 'grace' | 'lapsed';
  paidUntil: number;
  /** paidUntil + grace: when the provider stops holding and handing out our mail. */
  servedUntil: number;
  message: string;
}

const day = (t: number) => new Date(t).toISOString().slice(0, 10);

/** The warning rule: null for a free provider, an unasked one, or one paid for more than LAPSE_WARNING_MS. */
export function lapseOf(onion: string, a: Pick<ProviderAccount, 'paidUntil' | 'graceMs'> | null, now: number): Lapse | null {
  if (!a || a.paidUntil === 0 || a.paidUntil - now > LAPSE_WARNING_MS) return null;
  const servedUntil = a.paidUntil + a.graceMs;
  const state = a.paidUntil > now ? 'due' : servedUntil > now ? 'grace' : 'lapsed';
  const pay = `pay with \`onionpost providers pay ${onion}\``;
  // A priced provider says 1 when it found no payment at all (PROTOCOL.md §14.4).
  const ended = a.paidUntil <= 1 ? 'has no payment for your mailbox' : `was paid until ${day(a.paidUntil)}`;
  const message = state === 'due' ? `mailbox provider ${onion} is paid until ${day(a.paidUntil)}: ${pay}`
    : state === 'grace' ? `mailbox provider ${onion} ${ended}; it stops holding your mail after ${day(servedUntil)}: ${pay}`
    : `mailbox provider ${onion} ${ended} and no longer holds or hands out your mail: ${pay}`;
  return { state, paidUntil: a.paidUntil, servedUntil, message };
}

export interface UserMailboxesOptions {
  identity: Identity;
  store: () => Store;
  network: PeerNetwork;
  clock: Clock;
  limits: Limits;
  logger: Logger;
  /** The node's event bus (mailbox.lapsing). */
  emit: (ev: { type: string; [k: string]: unknown }) => void;
  /** Aborts every add in flight (the node closing). */
  signal: AbortSignal;
  /** Dial budget, ms. Default 60 s. */
  dialTimeoutMs?: number;
  /** SUBSCRIBE → TERMS deadline, ms. Default 60 s. */
  requestTimeoutMs?: number;
  /** Told after the list changed (a provider added or removed). */
  onChange?: () => void;
  /** A provider's measured reputation, shown with it. */
  reputation?: (onion: string) => ReputationView;
  /**
   * After subscribing (and listing the provider, so our bundle names it): keep our bundle and a
   * fresh batch of one-time prekeys there, on the same connection (first-contact.ts). Best effort.
   */
  keepBundle?: (client: MailboxClient, opts: RequestOpts) => Promise<unknown>;
}

const REFUSALS: ReadonlySet<string> = new Set(['NOT_PAID', 'TOO_MANY_USERS', 'STALE', 'BAD_SIGNATURE', 'RATE_LIMITED', 'BUSY', 'INTERNAL', 'MALFORMED']);

export class UserMailboxes {
  readonly #o: UserMailboxesOptions;

  /** The list's key as listKey() gave it; undefined until asked after a change. */
  #key: string | undefined;

  constructor(o: UserMailboxesOptions) {
    this.#o = o;
  }

  /** A string that changes when our list of providers changes (read from the store once per change). */
  listKey(): string {
    this.#key ??= this.onions().join(',');
    return this.#key;
  }

  #changed(): void {
    this.#key = undefined;
    this.#o.onChange?.();
  }

  list(): MailboxView[] {
    const now = this.#o.clock.now();
    const rep = this.#o.reputation;
    return this.#o.store().mailboxProviders.list().map((p) => mailboxView(p, now, rep?.(p.onion)));
  }

  /** Lasting warnings for `status`: priced providers whose payment ends within 7 days or has ended. */
  warnings(): { type: 'mailbox.lapsing'; provider: string; message: string }[] {
    const now = this.#o.clock.now();
    return this.#o.store().mailboxProviders.list().flatMap((p) => {
      const l = lapseOf(p.onion, p.account, now);
      return l ? [{ type: 'mailbox.lapsing' as const, provider: p.onion, message: l.message }] : [];
    });
  }

  /**
   * Asks `onion` (one of ours, on a connection open to it) how our account stands, keeps the
   * answer, and warns once a day while a priced provider's payment ends soon or has ended.
   * Throws what the request throws (the caller logs it).
   */
  async checkAccount(onion: string, client: MailboxClient, opts: RequestOpts): Promise<AccountStatus> {
    const o = this.#o;
    const s = await client.account(o.identity, opts);
    const now = o.clock.now();
    const providers = o.store().mailboxProviders;
    providers.setAccount(onion, { ...s, checkedAt: now });
    const l = lapseOf(onion, s, now);
    const p = l && providers.get(onion);
    if (l && p && (p.lapseWarnedAt === null || now - p.lapseWarnedAt >= LAPSE_EVENT_EVERY_MS)) {
      providers.setLapseWarned(onion, now);
      o.logger.warn({ provider: onion, state: l.state, paidUntil: l.paidUntil, servedUntil: l.servedUntil }, 'a mailbox provider\'s payment ends soon or has ended');
      o.emit({ type: 'mailbox.lapsing', provider: onion, state: l.state, paidUntil: l.paidUntil, servedUntil: l.servedUntil, message: l.message });
    }
    return s;
  }

  onions(): OnionAddress[] {
    return this.#o.store().mailboxProviders.list().map((p) => p.onion as OnionAddress);
  }

  /** Subscribes at `onion` and remembers it (again, with fresh terms, if it is one of ours). */
  async add(address: string): Promise<MailboxView> {
    let onion: OnionAddress;
    let providerKey: Uint8Array;
    try {
      ({ onion, identityKey: providerKey } = parseOnionAddress(address.trim()));
    } catch (err) {
      throw new MailboxesError('BAD_ADDRESS', `"${address}" is not a v3 onion address`, { cause: err });
    }
    const providers = this.#o.store().mailboxProviders;
    const known = providers.get(onion);
    if (!known && providers.list().length >= MAX_MAILBOXES) throw tooMany();
    const o = this.#o;
    const signal = AbortSignal.any([o.signal, AbortSignal.timeout((o.dialTimeoutMs ?? 60_000) + (o.requestTimeoutMs ?? 60_000))]);
    let channel;
    try {
      channel = await o.network.dial(onion, { signal, timeoutMs: o.dialTimeoutMs ?? 60_000, limits: o.limits, path: MAILBOX_PATH });
    } catch (err) {
      if (o.signal.aborted) throw new MailboxesError('CLOSED', 'the node is stopping', { cause: err });
      if (err instanceof TransportError && err.code === 'DIAL_REJECTED' && err.status === 404) {
        throw new MailboxesError('NOT_A_PROVIDER', `${onion} is online but is not a mailbox provider`, { cause: err });
      }
      throw new MailboxesError('UNREACHABLE', `cannot reach ${onion}`, { cause: err });
    }
    const client = new MailboxClient({ channel, providerKey, clock: o.clock, maxEnvelope: o.limits.maxEnvelope });
    let terms;
    let account: AccountStatus | null = null;
    try {
      const tag = subscriberTag(subscriberTagKey(o.identity), providerKey);
      const opts = { signal, timeoutMs: o.requestTimeoutMs ?? 60_000 };
      terms = await client.subscribe(o.identity, tag, opts);
      // Our public queue there (PROTOCOL.md §14.2): where senders leave mail while we are offline.
      try {
        await client.createQueue(o.identity, publicQueueId(o.identity.identityKey, providerKey), { write: null, read: publicQueueReadCap(o.identity, providerKey) }, opts);
      } catch (err) {
        if (!(err instanceof ProviderError && err.code === 'REMOTE' && err.remoteCode === MailboxErrorCode.QUEUE_EXISTS)) throw err;
      }
      // Shown at once (paid until, held), not only after the next fetch round; not needed to subscribe.
      account = await client.account(o.identity, opts).catch((err: unknown) => {
        o.logger.info({ provider: onion, err: describeError(err) }, 'the provider did not say how our account stands');
        return null;
      });
    } catch (err) {
      await client.close().catch(() => {});
      throw subscribeError(onion, err, o.signal);
    }
    try {
      const now = o.clock.now();
      let p = providers.put({ onion, identityKey: toHex(providerKey), terms, subscribedAt: now }, { max: MAX_MAILBOXES });
      if (account) {
        providers.setAccount(onion, { ...account, checkedAt: now });
        p = providers.get(onion) ?? p;
      }
      o.logger.info({ provider: onion, retentionMs: terms.retentionMs, quotaBytes: terms.quotaBytes }, 'subscribed at a mailbox provider');
      if (!known) this.#changed();
      await o.keepBundle?.(client, { signal, timeoutMs: o.requestTimeoutMs ?? 60_000 }).catch((err: unknown) => {
        o.logger.info({ provider: onion, err: describeError(err) }, 'could not keep our bundle at the provider now; the next fetch round tries again');
      });
      return mailboxView(p, now, o.reputation?.(p.onion));
    } catch (err) {
      // Another add took the last place while we were subscribing.
      if (err instanceof StoreError && err.code === 'CONSTRAINT') throw tooMany();
      throw err;
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** Forgets `onion`; NOT_FOUND when it is not one of ours. */
  remove(address: string): MailboxView {
    let onion: string;
    try {
      onion = parseOnionAddress(address.trim()).onion;
    } catch (err) {
      throw new MailboxesError('BAD_ADDRESS', `"${address}" is not a v3 onion address`, { cause: err });
    }
    const store = this.#o.store();
    const removed = store.batch(() => {
      const p = store.mailboxProviders.get(onion);
      if (p) store.mailboxProviders.remove(onion);
      return p;
    });
    if (!removed) throw new MailboxesError('NOT_FOUND', `${onion} is not one of your mailbox providers`);
    this.#o.logger.info({ provider: onion }, 'mailbox provider removed');
    this.#changed();
    return mailboxView(removed, this.#o.clock.now(), this.#o.reputation?.(removed.onion));
  }
}

function tooMany(): MailboxesError {
  return new MailboxesError('TOO_MANY_MAILBOXES', `you have ${MAX_MAILBOXES} mailbox providers, the most a bundle lists: remove one first`);
}

function subscribeError(onion: string, err: unknown, closing: AbortSignal): MailboxesError {
  if (!(err instanceof ProviderError)) return new MailboxesError('UNREACHABLE', `subscribing at ${onion} failed`, { cause: err });
  if (err.code === 'REMOTE') {
    const name = mailboxErrorName(err.remoteCode ?? 0);
    const code = (REFUSALS.has(name) ? name : 'REFUSED') as MailboxesErrorCode;
    return new MailboxesError(code, `${onion} refused the subscription: ${err.message}`, { cause: err, retryable: err.retryable });
  }
  if (err.code === 'BAD_SIGNATURE' || err.code === 'MALFORMED') {
    return new MailboxesError('BAD_TERMS', `${onion} answered with terms it did not sign`, { cause: err });
  }
  if (closing.aborted) return new MailboxesError('CLOSED', 'the node is stopping', { cause: err });
  return new MailboxesError('UNREACHABLE', `${onion} did not answer the subscription`, { cause: err });
}
