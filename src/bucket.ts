/**
 * A token bucket over an injected time, shared by every rate limit (the protocol's per-connection
 * frame limit, the listener's per-scope and global budgets, the node's decryption budgets).
 * `rate` tokens per second, at most `burst` stored; starts full.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;
  constructor(readonly rate: number, readonly burst: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }
  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
      this.#at = now;
    }
  }
  /** Takes `n` tokens (default one) if there are that many. */
  take(now: number, n = 1): boolean {
    this.#refill(now);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
  /** Tokens available now (fractional). */
  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }
  /** Milliseconds until `n` tokens (default one) are available (0 if they are; Infinity if never: n > burst). */
  waitMs(now: number, n = 1): number {
    this.#refill(now);
    if (this.#tokens >= n) return 0;
    if (n > this.burst || this.rate <= 0) return Infinity;
    return Math.ceil(((n - this.#tokens) * 1000) / this.rate);
  }
}
