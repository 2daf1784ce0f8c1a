/**
 * The root of every error onionpost throws on purpose.
 *
 * Each layer defines its own subclass with its closed set of string codes, usually in one line:
 * `export class StoreError extends OnionpostError<StoreErrorCode> {}`. Callers branch on `code` or `instanceof`, never on `message`, which
 * is for people and may change. The underlying failure, if any, travels in `cause`.
 */
export class OnionpostError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
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
