/**
 * outbox/: the durable retry scheduler. Reads due messages from the store, hands each to the
 * injected `deliver`, and records the outcome (delivered / retry with backoff / failed / held /
 * expired). Time comes from the injected Clock; see policy.ts for the backoff numbers.
 */
export {
  createOutbox, OutboxError, type Deliver, type DeliveryOutcome, type Outbox, type OutboxErrorCode, type OutboxOptions,
} from './outbox.js';
export { DEFAULT_BACKOFF, DEFAULT_TTL_MS, retryDelay, type BackoffPolicy, type RetryWhen } from './policy.js';
