/**
 * Who is refused for a while after misbehaving, by key: a Tor circuit's scope at the inbound guard
 * (transport/guard.ts), a mailbox provider's onion at the courier (node/courier.ts). Pure: time
 * comes in as `now`; no timers.
 *
 *   offence ──▶ refused for baseMs ──▶ remembered (not refused) for maxMs ──▶ forgotten
 *                 └─ each offence while remembered: twice the last refusal, at most maxMs
 *
 * An offence while the key is refused already changes nothing (its connections then still open
 * report one misbehaviour each; that is one offence, not several). At most `maxKeys` keys are
 * remembered; past it the one that offended least recently is forgotten first. baseMs 0 turns
 * cooling off.
 */
export interface CoolingOptions {
  /** The first refusal, ms. */
  baseMs: number;
  /** The longest refusal, and how long a key is remembered after its refusal ends, ms. */
  maxMs: number;
  /** Keys remembered at most. */
  maxKeys: number;
}

interface Entry {
  offences: number;
  until: number;
}

export class Cooling {
  readonly #o: CoolingOptions;
  /** Least recently offending first (re-inserted on each offence). */
  readonly #keys = new Map<string, Entry>();

  constructor(o: CoolingOptions) {
    this.#o = o;
  }

  /**
   * Records an offence by `key` at `now`; returns when its refusal ends (ms), or undefined when
   * cooling is off.
   */
  offend(key: string, now: number): number | undefined {
    const { baseMs, maxMs, maxKeys } = this.#o;
    if (baseMs <= 0 || maxKeys <= 0) return undefined;
    const e = this.#entry(key, now);
    if (e && e.until > now) return e.until;
    const offences = (e?.offences ?? 0) + 1;
    const until = now + Math.min(maxMs, baseMs * 2 ** Math.min(offences - 1, 40));
    this.#keys.delete(key);
    this.#keys.set(key, { offences, until });
    for (const k of this.#keys.keys()) {
      if (this.#keys.size <= maxKeys) break;
      this.#keys.delete(k);
    }
    return until;
  }

  /** When `key`'s refusal ends (ms), if it is refused at `now`. */
  refusedUntil(key: string, now: number): number | undefined {
    const e = this.#entry(key, now);
    return e && e.until > now ? e.until : undefined;
  }

  /** Keys refused at `now`. */
  refused(now: number): number {
    let n = 0;
    for (const e of this.#keys.values()) if (e.until > now) n++;
    return n;
  }

  /** Keys remembered (refused or not). */
  get size(): number {
    return this.#keys.size;
  }

  #entry(key: string, now: number): Entry | undefined {
    const e = this.#keys.get(key);
    if (e && now >= e.until + this.#o.maxMs) {
      this.#keys.delete(key);
      return undefined;
    }
    return e;
  }
}
