import { OnionpostError } from '../errors.js';

export type BridgeErrorCode =
  | 'LISTEN_FAILED' // a port could not be bound
  | 'WEAK_PASSWORD' // a bridge password shorter than 16 characters
  | 'BAD_MIME' // a submitted message could not be parsed
  | 'TOO_LARGE' // a submitted message does not fit an onionpost message
  | 'CLOSED';

export class BridgeError extends OnionpostError<BridgeErrorCode> {}
