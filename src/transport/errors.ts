import { OnionpostError } from '../errors.js';

/** Every way a transport fails. Stable codes; callers branch on `code`. */
export type TransportErrorCode =
  | 'DIAL_TIMEOUT' // the WebSocket handshake (through the agent, e.g. Tor) did not finish in timeoutMs
  | 'DIAL_ABORTED' // the dial's AbortSignal fired; `cause` is the signal's reason
  | 'DIAL_FAILED' // the connection or handshake failed; `cause` is the agent's or socket's error, unchanged
  | 'DIAL_REJECTED' // the server answered the upgrade with an HTTP status (503 over its connection cap); see `status`
  | 'LISTEN_FAILED' // the listener could not bind; `cause` is the socket error
  | 'CLOSED' // send() on a channel that is closing or closed
  | 'SEND_FAILED' // the socket failed while writing; the channel is destroyed
  | 'TOO_LARGE' // a message over limits.maxFrame (refused on send; a peer that sends one is closed with 1009)
  | 'BAD_FRAME' // the peer broke WebSocket framing or sent a text message; the channel is closed
  | 'BAD_PROXY_HEADER'; // a connection to a listener that expects tor's PROXY line did not start with one

export class TransportError extends OnionpostError<TransportErrorCode> {
  /** The HTTP status of a DIAL_REJECTED upgrade. */
  readonly status: number | undefined;
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}
