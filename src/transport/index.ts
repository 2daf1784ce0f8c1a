/**
 * transport/: ordered binary message channels. The protocol sees only `MessageChannel`; three
 * implementations provide it: the inbound WebSocket listener (behind the onion service), the
 * outbound WebSocket dialer (through Tor's SOCKS agent), and an in-memory pair for tests.
 */
export { TransportError, type TransportErrorCode } from './errors.js';
export {
  CloseCode, DEFAULT_CLOSE_TIMEOUT_MS, MAX_CLOSE_REASON_BYTES, isValidCloseCode,
  type ChannelCloseInfo, type ChannelEvents, type ChannelState, type MessageChannel,
} from './channel.js';
export { createMemoryPair, type MemoryPairOptions } from './memory.js';
export { DEFAULT_CLOSE_GRACE_MS, createWsListener, type InboundPeer, type WsListener, type WsListenerOptions } from './listener.js';
export { type CutReason, type GuardStats, type Misbehaviour, type Trust } from './guard.js';
export { DEFAULT_DIAL_TIMEOUT_MS, dialWs, type DialWsOptions } from './dialer.js';
