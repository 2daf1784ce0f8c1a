import { OnionpostError } from '../errors.js';

export type NodeErrorCode =
  | 'UNKNOWN_RECIPIENT' // not an onion address, a contact, or a registered name
  | 'NO_REGISTRY' // a name was given but the node runs without a registry
  | 'NOT_FOUND' // no such message or contact
  | 'AMBIGUOUS_ID' // a message id prefix that matches several messages
  | 'NO_KEY_CHANGE' // approving a contact that has no pending key change
  | 'SELF' // sending to our own address
  | 'BRIDGE_OFF' // the mail bridge is not running
  | 'NOT_STARTED'
  | 'CLOSED';

export class NodeError extends OnionpostError<NodeErrorCode> {}
