/**
 * provider/: the mailbox-provider role (issue 11): mail held for users while they are offline, in
 * per-contact queues with write and read capabilities. This round: the durable store. The wire
 * frames (DEPOSIT, FETCH, ACK) and the node's wiring come on top of the session layer.
 */
export { ProviderError, type ProviderErrorCode } from './errors.js';
export {
  DEFAULT_PROVIDER_LIMITS, PROVIDER_MIGRATIONS, ProviderStore, capabilityHash, type KeptBundle,
  type AccountPayment, type DepositResult, type HeldEnvelope, type ProviderLimits, type ProviderStats, type ProviderStoreOptions,
} from './store.js';
export {
  DEFAULT_REPUTATION, REPUTATION_WEIGHTS, addToTally, reputationOf, reputationOfTally,
  type KindTally, type Reputation, type ReputationEvent, type ReputationEventKind, type ReputationOptions, type ReputationTally,
} from './reputation.js';
export {
  DEFAULT_POLICY, judge, rank, replace,
  type PolicyVerdict, type ProviderCandidate, type ProviderPolicy, type Replacement,
} from './policy.js';
export { MAX_TRUST_LIST_PROVIDERS, signTrustList, verifyTrustList, type TrustList } from './trust-list.js';
export {
  HEADER_BYTES as MAILBOX_HEADER_BYTES, MAILBOX_PATH, MAILBOX_WIRE_VERSION, MAX_ACK, MAX_FETCH, MAX_PUT_PREKEYS, MailboxErrorCode, decodeMailboxAnswer, type BundlePrekey,
  decodeMailboxFrame, decodeMailboxRequest, encodeMailboxFrame, mailboxErrorName, type AccountStatusFields, type HeldItem, type MailboxAnswer, type MailboxFrame, type MailboxRequest,
} from './wire.js';
export { DEFAULT_PAYMENT_TIMING, PaymentGate, type PaymentGateOptions, type PaymentSource } from './payments.js';
export { DEFAULT_SERVICE_LIMITS, MailboxService, type MailboxServiceLimits, type MailboxServiceOptions } from './service.js';
export { MailboxClient, verifyDepositReceipt, type AccountStatus, type DepositReceipt, type MailboxClientOptions, type RequestOpts, type Terms } from './client.js';
