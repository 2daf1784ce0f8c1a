/**
 * The root of every error onionpost throws on purpose.
 *
 * Each layer defines its own subclass with its closed set of string codes, usually in one line:
 * `export class StoreError extends OnionpostError<StoreErrorCode> {}`. Callers branch on `code` or `instanceof`, never on `message`, which
 * is for people and may change. The underlying failure, if any, travels in `cause`.
 */
export class OnionpostError<Code extends string = string> extends Error {
  readonly code: Code;
  /**
   * Whether retrying the failed operation could help, for the error families that say so (a SOCKS
   * dial through Tor, our own Tor being down, a dial that timed out). Set where the error is made;
   * an error that wraps another adopts its direct cause's advice at construction unless it gives
   * its own, so a caller reads it on the error it caught and never walks the `cause` chain.
   * Undefined: the family gives no advice and the caller decides by `instanceof`.
   */
  readonly retryAdvice: RetryAdvice | undefined;
  constructor(code: Code, message: string, options?: { cause?: unknown; retryAdvice?: RetryAdvice }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    const cause = options?.cause;
    this.retryAdvice = options?.retryAdvice ?? (cause instanceof OnionpostError ? cause.retryAdvice : undefined);
  }
}

/**
 * How soon retrying could succeed: 'soon' (seconds: a transient failure, e.g. a circuit that timed
 * out or our tor restarting), 'later' (the other side looks down: back off), 'never' (the request
 * itself is wrong: a bad address, missing client authorization).
 */
export type RetryClass = 'soon' | 'later' | 'never';

/**
 * Retry advice carried by an error: its class, the code of the failure it is about (for a wrapper,
 * the wrapped error's, e.g. Tor's ONION_DESC_NOT_FOUND under a DIAL_FAILED).
 */
export interface RetryAdvice {
  readonly retryClass: RetryClass;
  readonly code: string;
}

/** True when `err` is an OnionpostError carrying `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof OnionpostError && err.code === code;
}

/** A one-line description of any thrown value, for logs and the CLI (never a stack). */
export function describeError(err: unknown): string {
  if (err instanceof OnionpostError) return `${err.message} [${err.code}]`;
  if (err instanceof Error) return err.message;
  return String(err);
}
