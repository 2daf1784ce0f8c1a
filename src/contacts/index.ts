/**
 * contacts/: the contact book's trust policy (resolve a recipient, pin what the registry says,
 * hold mail on an unapproved key change, approve one). See policy.ts.
 */
export { ContactError, ContactPolicy, recipientOf, type ClearedKeyChange, type ContactErrorCode, type ContactEvent, type ContactPolicyOptions, type ContactWarning, type Recipient } from './policy.js';
