import { OnionpostError } from '../errors.js';

/**
 * Every way the wire protocol fails. Stable codes; callers branch on `code`.
 *
 * Decoding (frames.ts): the bytes are not a frame we accept.
 * Connection (peer.ts): the exchange with one peer went wrong; `cause` carries the transport's error
 * or, for REMOTE_REJECT, `remoteReject` carries what the peer said.
 */
export type ProtocolErrorCode =
  // decoding
  | 'TRUNCATED' // input ends inside a field
  | 'TOO_LARGE' // the frame exceeds limits.maxFrame, or an envelope exceeds limits.maxEnvelope
  | 'BAD_VERSION' // first byte is not a wire-format version we decode
  | 'UNKNOWN_TYPE' // second byte names no frame type
  | 'BAD_LENGTH' // a length field exceeds its field's maximum
  | 'TRAILING_BYTES' // bytes left after the last field
  | 'BAD_FIELD' // a field's value is out of its domain (flag not 0/1, non-ASCII capability, bad UTF-8, …)
  // connection
  | 'HANDSHAKE_TIMEOUT' // no HELLO from the peer within limits.handshakeTimeoutMs
  | 'NO_COMMON_VERSION' // the peer's HELLO lists no protocol version we speak
  | 'PEER_TIMEOUT' // the peer fell silent: no frame within heartbeatTimeoutMs of our PING
  | 'RATE_LIMITED' // the peer sent faster than framesPerSecond/frameBurst, or more DELIVERs than our window; we closed it
  | 'SLOW_READER' // the peer left more than limits.maxUnreadAnswerBytes of our answers unread; we cut it
  | 'PEER_MALFORMED' // the peer sent bytes that failed to decode; we closed it
  | 'UNEXPECTED_FRAME' // the peer sent a frame its role or the handshake state does not allow
  | 'REMOTE_REJECT' // the peer answered with a connection-level REJECT (see `remoteReject`)
  | 'CLOSED' // the connection closed before an answer came (outcome of a DELIVER unknown: retry)
  | 'TIMEOUT' // no answer within the request's timeoutMs (outcome unknown: retry)
  | 'ABORTED' // the request's AbortSignal fired
  | 'DUPLICATE_REQUEST' // a DELIVER for this messageId is already in flight on this connection
  | 'WRONG_ROLE'; // a client-only call on a server connection, or the reverse

/** What a peer said in a REJECT frame (numbers from RejectCode). */
export interface RemoteReject {
  code: number;
  retryable: boolean;
  reason: string;
}

export class ProtocolError extends OnionpostError<ProtocolErrorCode> {
  /** Set for REMOTE_REJECT. */
  readonly remoteReject: RemoteReject | undefined;
  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown; remoteReject?: RemoteReject }) {
    super(code, message, options);
    this.remoteReject = options?.remoteReject;
  }
}
