import { OnionpostError } from '../errors.js';

/**
 * The node's own failures. Recipient and contact errors are the contact policy's (ContactError:
 * UNKNOWN_RECIPIENT, NO_REGISTRY, NOT_FOUND, NO_KEY_CHANGE), SELF is the pipeline's, message lookups
 * are the API handlers' (NOT_FOUND, AMBIGUOUS_ID).
 */
export type NodeErrorCode =
  | 'BRIDGE_OFF' // the mail bridge is not running
  | 'NOT_STARTED' // a call that needs the store before start() (or after a failed one)
  | 'CLOSED'; // the node was closed (the abort reason of its in-flight work)

export class NodeError extends OnionpostError<NodeErrorCode> {}

/**
 * Why `mailboxes add` / `remove` failed (src/node/mailboxes.ts). A provider's refusal carries the
 * provider's own code (PROTOCOL.md §14: NOT_PAID, TOO_MANY_USERS, STALE, …); nothing is stored then.
 */
export type MailboxesErrorCode =
  | 'BAD_ADDRESS' // not a v3 onion address
  | 'TOO_MANY_MAILBOXES' // the node is subscribed at MAX_MAILBOXES providers already
  | 'UNREACHABLE' // the onion could not be reached (not online, Tor could not connect, timed out)
  | 'NOT_A_PROVIDER' // the onion answered but serves no mailbox protocol (/mailbox/v1)
  | 'BAD_TERMS' // the provider's terms are not signed by its identity key, or its answer did not decode
  | 'NOT_FOUND' // remove: not one of our providers
  | 'BAD_POLICY' // setPolicy: a field out of range (mailbox-policy.ts)
  | 'CLOSED' // the node is stopping
  // the provider refused SUBSCRIBE (its ERROR code):
  | 'NOT_PAID' | 'TOO_MANY_USERS' | 'STALE' | 'BAD_SIGNATURE' | 'RATE_LIMITED' | 'BUSY' | 'INTERNAL' | 'MALFORMED' | 'REFUSED';

export class MailboxesError extends OnionpostError<MailboxesErrorCode> {
  /** For a refusal: whether the provider said to try again later. */
  readonly retryable: boolean;
  constructor(code: MailboxesErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(code, message, options);
    this.retryable = options?.retryable ?? false;
  }
}

/** Why `providers.list` / `providers.show` failed (src/node/provider-listings.ts). */
export type ProvidersErrorCode =
  | 'NO_DIRECTORY' // the node was started without a provider directory (no network configured, or none deployed there)
  | 'BAD_PROVIDER' // show: neither a TRON owner address nor a v3 onion address
  | 'NOT_FOUND'; // show: not listed in the directory

export class ProvidersError extends OnionpostError<ProvidersErrorCode> {}
