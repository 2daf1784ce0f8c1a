/**
 * protocol/: the onionpost wire protocol. `frames.ts` holds the pure frame codecs (byte layouts
 * documented there); `peer.ts` joins a transport MessageChannel to them (handshake, heartbeat, rate
 * limit, DELIVER → RECEIPT/REJECT correlation).
 */
export { ProtocolError, type ProtocolErrorCode, type RemoteReject } from './errors.js';
export {
  DEFAULT_MAX_RECEIPTS_PER_FRAME, FRAME_TYPE_IDS, HEADER_BYTES, MAX_AGENT_BYTES, MAX_CAPABILITIES, MAX_CAPABILITY_BYTES, MAX_REASON_BYTES,
  MAX_VERSIONS, MESSAGE_ID_BYTES, NONCE_BYTES, NO_MESSAGE_ID, RECEIPT_MAC_BYTES, RejectCode, WIRE_VERSION, decodeFrame, encodeFrame,
  isRetryableByDefault, rejectCodeName,
  type BundleFrame, type BundleRequestFrame, type DecodeLimits, type DeliverFrame, type Frame, type FrameType, type HelloFrame,
  type PingFrame, type PongFrame, type ReceiptFrame, type RejectFrame,
} from './frames.js';
export {
  DEFAULT_REQUEST_TIMEOUT_MS, PROTOCOL_VERSIONS, PeerConnection, closedForMisbehaviour, TokenBucket, heartbeatStep, negotiateVersion, parseWindow, rejectForDecodeError, windowCapability,
  type DeliverAnswer, type DeliverResult, type HeartbeatAction, type PeerCloseInfo, type PeerConnectionOptions, type PeerHello,
  type PeerState, type RequestOptions, type ServerHandlers,
} from './peer.js';
