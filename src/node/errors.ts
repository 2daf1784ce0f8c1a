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
