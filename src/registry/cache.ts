/**
 * A small TTL cache for verified records, driven by an injected Clock. Only verified records are
 * stored. Expired entries are dropped when read; `maxEntries` bounds memory by evicting the oldest
 * insertion.
 */
import type { Clock } from '../clock.js';

/** How long a verified record is served from the cache, ms. */
export const DEFAULT_CACHE_TTL_MS = 10 * 60 * 1000;

export class TtlCache<V> {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(opts: { clock: Clock; ttlMs: number; maxEntries?: number }) {
    this.#clock = opts.clock;
    this.#ttlMs = opts.ttlMs;
    this.#maxEntries = opts.maxEntries ?? 10_000;
  }

  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (this.#clock.now() >= e.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    if (this.#ttlMs <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#clock.now() + this.#ttlMs });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
