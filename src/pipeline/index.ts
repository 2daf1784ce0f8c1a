/**
 * pipeline/: the message path between the user and the wire — resolve, encrypt, queue; deliver
 * bytes and classify the outcome; open, commit and receipt what arrives (pipeline.ts). The
 * encryption scheme sits behind the Envelopes interface (envelopes.ts); peer connections are
 * pooled in connections.ts; failures map to outcomes by their typed retry advice (outcome.ts).
 */
export {
  MessagePipeline, PipelineError, type PipelineErrorCode, type PipelineEvent, type PipelineEvents, type PipelineOptions,
  type RecipientSource, type SendParams, type SendResult,
} from './pipeline.js';
export {
  sealedBoxEnvelopes, type Attachment, type Draft, type EnvelopeReject, type Envelopes, type OpenResult, type OpenedMessage, type Prepared,
  type RecipientKeys, type SealedBoxOptions,
} from './envelopes.js';
export { Connections, type ConnectionsOptions, type Dialer } from './connections.js';
export { failureOutcome, rejectOutcome } from './outcome.js';
export { DEFAULT_DIAL_POLICY, dialTimeout, secondDial, type DialPolicy, type FailedDial } from './dial-policy.js';
export { GroupCommitter } from './group-commit.js';
