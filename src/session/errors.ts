import { OnionpostError } from '../errors.js';

/**
 * Every way the session layer refuses its input. Stable codes (PROTOCOL.md §11 says which REJECT
 * each becomes on the wire).
 */
export type SessionErrorCode =
  | 'BAD_ENVELOPE' // length not a padding bucket, too short for its kind, or an unknown kind byte
  | 'UNSUPPORTED_VERSION' // an envelope, bundle or inner message version other than 2
  | 'BAD_INIT' // INIT fields inconsistent, or an all-zero DH in the agreement
  | 'PREKEY_UNKNOWN' // INIT names a signed, PQ or one-time prekey we no longer hold
  | 'BAD_BUNDLE' // a bundle (or bundle answer) that does not parse or whose signature does not verify
  | 'BUNDLE_EXPIRED' // a bundle outside its validity window
  | 'BAD_TAG' // the envelope's tag is not the one expected for the counter the caller looked up
  | 'DECRYPT_FAILED' // a header, sealed bundle or body that does not authenticate
  | 'BAD_HEADER' // an authenticated header that is inconsistent (counter, zero DH)
  | 'TOO_MANY_SKIPPED' // more than MAX_SKIP message keys to skip for one message
  | 'BAD_MESSAGE' // padding or inner message malformed
  | 'EXPIRED' // the inner message is past its expiry
  | 'CLOCK_SKEW' // created too far in the future, or expiring before it was created
  | 'TOO_LARGE' // a message that does not fit the largest padding bucket
  | 'BAD_STATE' // a serialized session state that does not decode
  | 'NOT_READY' // a session that cannot send yet (no sending chain)
  | 'BAD_LENGTH'; // a caller passed a key, id or seed of the wrong size

export class SessionError extends OnionpostError<SessionErrorCode> {}
