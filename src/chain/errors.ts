import { OnionpostError } from '../errors.js';

/** Failures of the dev chain's own API (not transaction rejections, which are java-tron envelopes). */
export type ChainErrorCode =
  | 'BAD_SNAPSHOT' // revert() with an id that is unknown or already reverted past
  | 'BAD_ARGUMENT' // a negative time shift, a bad account count, ...
  | 'LISTEN_FAILED' // the HTTP server could not bind
  | 'CLOSED'; // the chain was closed

export class ChainError extends OnionpostError<ChainErrorCode> {}
