/**
 * Errors of the Tor layer, split by who failed (the stem/bine habit):
 *
 *   TorProtocolError  Tor said something we cannot parse (a malformed reply line, a bad data block).
 *   TorOperationError Tor understood and refused: carries Tor's numeric status (e.g. 552) and text.
 *   TorSocketError    the control connection could not be made, broke, or was closed by us.
 *   TorError          everything about finding, launching and owning the tor process, and publishing.
 *   SocksError        a SOCKS5 dial through Tor failed (see socks.ts for codes and retry advice).
 *
 * All extend OnionpostError; callers branch on `instanceof` and `code`, never on `message`.
 */
import { OnionpostError } from '../errors.js';

export type TorErrorCode =
  | 'TOR_NOT_FOUND' // no tor binary at the configured path, on PATH, or in /usr/sbin
  | 'TOR_TOO_OLD' // tor older than we support, or lacking a feature we need (message lists what)
  | 'TOR_VERSION_UNKNOWN' // `tor --version` printed nothing we recognise
  | 'TOR_EXITED' // the tor process exited (during start-up, or while we waited on it)
  | 'BOOTSTRAP_TIMEOUT' // tor did not reach 100 % bootstrap before the deadline
  | 'CONTROL_PORT_UNREACHABLE' // tor never wrote its control port file, or the port refused us
  | 'AUTH_FAILED' // no authentication method worked (or SAFECOOKIE server hash did not verify)
  | 'ONION_MISMATCH' // ADD_ONION returned a ServiceID other than the one the key implies
  | 'BAD_ARGUMENT' // a command argument we refuse to send (CR/LF, bad key blob, bad target)
  | 'ABORTED' // the caller's AbortSignal fired
  | 'TIMEOUT' // a bounded wait (other than bootstrap) ran out
  | 'TESTNET_FAILED'; // the private test network did not come up (consensus deadline, a router died)

export class TorError extends OnionpostError<TorErrorCode> {}

/** Tor sent bytes that do not follow the control protocol's reply grammar. */
export class TorProtocolError extends OnionpostError<'CONTROL_PROTOCOL'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONTROL_PROTOCOL', message, options);
  }
}

/** Tor refused a command. `status` is Tor's 3-digit code (451, 510, 512, 550, 552, …), `text` its reply text. */
export class TorOperationError extends OnionpostError<'CONTROL_REFUSED'> {
  readonly status: number;
  readonly text: string;
  readonly command: string;
  constructor(command: string, status: number, text: string) {
    super('CONTROL_REFUSED', `tor refused ${command}: ${status} ${text}`);
    this.status = status;
    this.text = text;
    this.command = command;
  }
}

export type TorSocketErrorCode = 'CONNECT_FAILED' | 'CONNECTION_CLOSED' | 'CONNECT_TIMEOUT' | 'ABORTED';

/** The control connection failed: could not connect, broke, or was closed (by us or by tor). */
export class TorSocketError extends OnionpostError<TorSocketErrorCode> {}
