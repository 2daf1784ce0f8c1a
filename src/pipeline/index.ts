/**
 * pipeline/: the message path between the user and the wire — resolve, encrypt, queue; deliver
 * bytes and classify the outcome; open, commit and receipt what arrives (pipeline.ts). The
 * encryption sits behind the Envelopes interface (envelopes.ts), implemented over sessions
 * (session-envelopes.ts, PROTOCOL.md); peer connections are
 * pooled in connections.ts; failures map to outcomes by their typed retry advice (outcome.ts).
 */
export {
  MessagePipeline, PipelineError, type PipelineErrorCode, type PipelineEvent, type PipelineEvents, type PipelineOptions,
  type RecipientSource, type SendParams, type SendResult,
} from './pipeline.js';
export {
  type Attachment, type Draft, type EnvelopeReject, type Envelopes, type Opened, type OpenedMessage, type Prepared, type Sendability,
  type UnknownSessionVerdict,
} from './envelopes.js';
export { SessionEnvelopes, rejectForSessionError, storePrekeyLookup, type SessionEnvelopesOptions } from './session-envelopes.js';
export { Connections, claimedName, nameCapability, type ConnectionsOptions, type Dialer } from './connections.js';
export { failureOutcome, looksOffline, rejectOutcome } from './outcome.js';
export { DEFAULT_DIAL_POLICY, dialTimeout, secondDial, type DialPolicy, type FailedDial } from './dial-policy.js';
export { GroupCommitter } from './group-commit.js';
