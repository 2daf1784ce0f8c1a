/**
 * A priced provider's payment check (PROTOCOL.md §14.4): who is served, from what it remembers of
 * each subscriber's paid-until date (ProviderStore, `accounts.paid_until`), reading the chain only
 * when that date has passed: the subscriber may have paid more since.
 *
 *   SUBSCRIBE        the tag must be paid (or inside the grace): read on chain unless the date
 *                    remembered for that same tag still covers now.
 *   DEPOSIT, FETCH   served while the owner's remembered date covers now; past it, the chain is read
 *                    again (at most once per `recheckMs` per subscriber) and the new date remembered.
 *                    Past paid-until + grace: NOT_PAID.
 *   ACCOUNT          the date as DEPOSIT/FETCH would find it (the same rechecks), told to the
 *                    subscriber instead of refusing it: how a lapsed one learns, before and after.
 *
 * A chain that cannot be read never takes service from someone who paid: the remembered date plus
 * the grace still holds, and the failure is logged once, then counted (one line per `logEveryMs`). Past that, and
 * for a subscription never seen paid, the answer is UNAVAILABLE (retryable), not NOT_PAID.
 */
import type { Clock } from '../clock.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { createLogThrottle, type LogThrottle } from '../log-throttle.js';
import { ProviderError } from './errors.js';
import type { AccountPayment, ProviderStore } from './store.js';

/** What the provider learns from the provider directory on chain (the node's wiring supplies it). */
export interface PaymentSource {
  /** Whether this provider charges now (its listing has a price). Throws when that cannot be read. */
  priced(signal: AbortSignal): Promise<boolean>;
  /** When the subscription recorded under `tag` is paid until, ms; 0 never. Throws when the chain cannot be read. */
  paidUntil(tag: Uint8Array, signal: AbortSignal): Promise<number>;
}

export interface PaymentGateOptions {
  source: PaymentSource;
  store: ProviderStore;
  clock: Clock;
  logger: Logger;
  /** How long past paid-until a subscription is still served, ms. */
  graceMs: number;
  /** Past a subscriber's remembered date, how often DEPOSIT/FETCH may read the chain again for it, ms. */
  recheckMs: number;
  /** The deadline of one chain read, ms. */
  checkTimeoutMs: number;
  /** While the chain cannot be read: one warning, then one summary line per this many ms. */
  logEveryMs: number;
  /** Aborts every chain read in flight (the service closing). */
  signal: AbortSignal;
}

export const DEFAULT_PAYMENT_TIMING = Object.freeze({ recheckMs: 10 * 60_000, checkTimeoutMs: 30_000, logEveryMs: 10 * 60_000 });

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class PaymentGate {
  readonly #o: PaymentGateOptions;
  /** Per subscriber (identity key, hex) past its remembered date: when the chain was last asked, and whether it answered. */
  readonly #checked = new Map<string, { at: number; ok: boolean }>();
  /** Chain reads in flight, per tag: concurrent requests share one. */
  readonly #reading = new Map<string, Promise<number>>();
  readonly #warnings: LogThrottle;

  constructor(o: PaymentGateOptions) {
    this.#o = o;
    this.#warnings = createLogThrottle({ logger: o.logger, clock: o.clock, intervalMs: o.logEveryMs });
  }

  /** Logs what the throttle still counts and clears its timer. Idempotent. */
  close(): void {
    this.#warnings.close();
  }

  #signal(): AbortSignal {
    return AbortSignal.any([this.#o.signal, AbortSignal.timeout(this.#o.checkTimeoutMs)]);
  }

  #read(tag: Uint8Array): Promise<number> {
    const k = hex(tag);
    let p = this.#reading.get(k);
    if (!p) {
      p = this.#o.source.paidUntil(tag, this.#signal()).finally(() => this.#reading.delete(k));
      this.#reading.set(k, p);
    }
    return p;
  }

  #chainFailed(err: unknown): void {
    if (this.#o.signal.aborted) throw new ProviderError('CLOSED', 'mailbox service closed', { cause: err });
    this.#warnings.warn('chain', { err: describeError(err) }, 'payment check: the provider directory could not be read; serving by the remembered paid-until dates');
  }

  #unavailable(err: unknown): ProviderError {
    return new ProviderError('UNAVAILABLE', 'the provider cannot check payments on chain right now; try again later', { cause: err, retryable: true });
  }

  #served(until: number, now: number): boolean {
    return until + this.#o.graceMs > now;
  }

  /** Whether this provider charges; a failure is a chain failure (the caller falls back to what it remembers). */
  async #priced(): Promise<boolean> {
    return this.#o.source.priced(this.#signal());
  }

  /**
   * Before SUBSCRIBE: throws NOT_PAID (or UNAVAILABLE) unless `tag` is paid. Returns the paid-until
   * date to remember with the account, or undefined for a free provider.
   */
  async subscribe(identityKey: Uint8Array, tag: Uint8Array | null, now: number): Promise<number | undefined> {
    const had = this.#o.store.account(identityKey);
    const remembered = had && tag && had.tag && hex(had.tag) === hex(tag) ? had.paidUntil : 0;
    let until: number;
    try {
      if (!(await this.#priced())) return undefined;
      if (!tag) throw new ProviderError('NOT_PAID', 'this provider is paid: subscribe with the tag your payment is recorded under');
      if (remembered > now) return remembered;
      until = await this.#read(tag);
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      this.#chainFailed(err);
      if (this.#served(remembered, now)) return remembered;
      throw this.#unavailable(err);
    }
    this.#checked.delete(hex(identityKey));
    if (!this.#served(until, now)) throw new ProviderError('NOT_PAID', until ? 'the subscription has lapsed' : 'no payment is recorded for that tag');
    return until;
  }

  /** Before DEPOSIT or FETCH into `owner`'s queue: throws NOT_PAID (or UNAVAILABLE) once its subscription has lapsed. */
  async access(owner: AccountPayment, now: number): Promise<void> {
    if (owner.paidUntil > now) return;
    const r = await this.#recheck(owner, now);
    if (!r || r.until > now || this.#served(r.until, now)) return;
    if (r.failure !== null) throw this.#unavailable(r.failure);
    throw new ProviderError('NOT_PAID', owner.tag ? 'the subscription has lapsed' : 'this provider is paid: subscribe with the tag your payment is recorded under');
  }

  /**
   * For ACCOUNT (PROTOCOL.md §14.4): `owner`'s paid-until date as best known, 0 when this provider
   * is free now; never NOT_PAID, since this is how a lapsed subscriber learns it is. A priced
   * provider never answers 0: with no payment found it answers 1 (long past). Past the remembered
   * date the chain is read again as for access() (at most once per `recheckMs`); a chain that cannot
   * be read leaves the remembered date.
   */
  async status(owner: AccountPayment, now: number): Promise<number> {
    let priced: boolean;
    try {
      priced = await this.#priced();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      this.#chainFailed(err);
      // A remembered payment means it charged; without one we cannot say which it is.
      if (owner.paidUntil === 0) throw this.#unavailable(err);
      priced = true;
    }
    if (!priced) return 0;
    let until = owner.paidUntil;
    if (until <= now) {
      const r = await this.#recheck(owner, now);
      if (!r) return 0;
      until = r.until;
    }
    return Math.max(until, 1);
  }

  /**
   * Past `owner`'s remembered date: reads the chain again, unless it was asked for this subscriber
   * less than `recheckMs` ago; remembers a new date. Null when the provider turned out to be free.
   * `failure` is why the newest date could not be read (this time or the last), or null.
   */
  async #recheck(owner: AccountPayment, now: number): Promise<{ until: number; failure: unknown } | null> {
    const k = hex(owner.identityKey);
    const last = this.#checked.get(k);
    let until = owner.paidUntil;
    let failure: unknown = null;
    if (last === undefined || now - last.at >= this.#o.recheckMs) {
      try {
        if (!(await this.#priced())) return null;
        if (owner.tag) {
          until = await this.#read(owner.tag);
          if (until !== owner.paidUntil) this.#o.store.setPaidUntil(owner.identityKey, until);
        }
        this.#checked.set(k, { at: now, ok: true });
      } catch (err) {
        if (err instanceof ProviderError) throw err;
        this.#chainFailed(err);
        this.#checked.set(k, { at: now, ok: false });
        failure = err;
      }
    } else if (!last.ok) failure = new Error('the last payment check failed');
    if (until > now) this.#checked.delete(k);
    return { until, failure };
  }
}
