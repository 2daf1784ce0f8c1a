import { OnionpostError } from '../errors.js';

/** Every way the registry client fails. Stable codes; callers branch on `code`, never on `message`. */
export type RegistryErrorCode =
  | 'NAME_INVALID' // not 1–64 of [a-z0-9-] without a leading/trailing '-' (checked before any network call)
  | 'NAME_TAKEN' // the name belongs to another owner
  | 'ALREADY_REGISTERED' // this TRON account already owns a name
  | 'NOT_FOUND' // no record to update (the signer owns no name)
  | 'NOT_OWNER' // the signer does not own the record it tried to change
  | 'BAD_RECORD' // a record whose signature, metadata or rotation statement does not verify; the record is not returned
  | 'BAD_RESPONSE' // a node answered with something that is not a valid TRON API reply (wrong contract address, garbage)
  | 'UNREACHABLE' // a fullHost refused the connection, timed out or answered with an HTTP error (the host is in the message)
  | 'UNFUNDED' // the signing account has no TRX to pay for energy/bandwidth
  | 'NO_KEY' // a write on a client created without `tronPrivateKey`
  | 'ENDPOINTS_DISAGREE' // two configured hosts returned different records for the same query
  | 'TX_FAILED' // a transaction or dry run reverted for another reason (`reason` holds the decoded revert string)
  | 'TIMEOUT' // a transaction was not confirmed, or a commitment did not age, before the deadline
  | 'PRICE_CHANGED' // a provider's price rose above what the payer agreed to; nothing was sent
  | 'ABORTED'; // the caller's AbortSignal fired

export class RegistryError extends OnionpostError<RegistryErrorCode> {
  /** The contract's revert string, when the failure came from a revert (e.g. "NAME_TAKEN"). */
  readonly reason: string | undefined;
  constructor(code: RegistryErrorCode, message: string, options?: { cause?: unknown; reason?: string }) {
    super(code, message, options);
    this.reason = options?.reason;
  }
}
