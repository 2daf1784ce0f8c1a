import { OnionpostError } from '../errors.js';

/**
 * Every way the mailbox-provider role refuses. Stable codes; the wire maps each to a REJECT. Unknown
 * queue and wrong capability share NO_CAPABILITY on purpose: a depositor learns nothing about which
 * queues exist.
 */
export type ProviderErrorCode =
  | 'NO_CAPABILITY' // no such queue, or the write/read capability does not match it
  | 'OVER_QUOTA' // the deposit would take the queue owner's held bytes past its quota
  | 'BAD_SIZE' // an envelope whose length is not an envelope size
  | 'TOO_MANY_USERS' // the provider holds mail for as many users as it agreed to
  | 'TOO_MANY_QUEUES' // the user has as many queues as allowed
  | 'NOT_SUBSCRIBED' // a queue operation for an identity the provider holds no mail for
  | 'QUEUE_EXISTS' // a queue id already in use (ids are random: a client bug or a replay)
  | 'BAD_TRUST_LIST' // a trust list that does not parse, whose signature does not verify, or that expired
  | 'UNTRUSTED_SIGNER' // a valid trust list signed by someone the user does not trust
  | 'MALFORMED' // a mailbox frame that does not decode (closed after the ERROR)
  | 'BAD_SIGNATURE' // a signed request, terms or deposit receipt whose signature does not verify
  | 'STALE' // a signed request whose time is too far from the provider's clock (a replay, or a wrong clock)
  | 'NO_BUNDLE' // GET_BUNDLE for an identity the provider keeps no (unexpired) bundle for
  | 'BAD_BUNDLE' // PUT_BUNDLE with a bundle that does not parse, verify under the subscriber's key, or is expired
  | 'RATE_LIMITED' // too many GET_BUNDLE requests at the provider
  | 'NOT_PAID' // a priced provider found no payment for the subscriber's tag, or it lapsed
  | 'UNAVAILABLE' // a priced provider could not read the chain and has no paid-until date that still covers now (retryable; INTERNAL on the wire)
  | 'REMOTE' // the provider answered ERROR (the wire code is in `remoteCode`)
  | 'TIMEOUT' // no answer before the deadline
  | 'ABORTED' // the caller's AbortSignal fired
  | 'CLOSED'; // the provider store or connection was closed

export class ProviderError extends OnionpostError<ProviderErrorCode> {
  /** For REMOTE: the provider's ERROR code (MailboxErrorCode) and whether it said to retry. */
  readonly remoteCode: number | undefined;
  readonly retryable: boolean;
  constructor(code: ProviderErrorCode, message: string, options?: { cause?: unknown; remoteCode?: number; retryable?: boolean }) {
    super(code, message, options);
    this.remoteCode = options?.remoteCode;
    this.retryable = options?.retryable ?? false;
  }
}
