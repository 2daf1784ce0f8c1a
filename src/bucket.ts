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
  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
  /** Tokens available now (fractional). */
  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }
  /** Milliseconds until one token is available (0 if one is). */
  waitMs(now: number): number {
    this.#refill(now);
    if (this.#tokens >= 1) return 0;
    return this.rate > 0 ? Math.ceil(((1 - this.#tokens) * 1000) / this.rate) : Infinity;
  }
}
