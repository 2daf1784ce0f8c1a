/**
 * A MessageChannel over one `ws` WebSocket, client or server side. Binary messages only: a text
 * message closes the channel with 1003. The socket's 'error' listener is attached in the constructor,
 * before any data can arrive (without one an oversized frame crashes the process; see
 * research/security-notes.md row 7).
 */
import type { WebSocket, RawData } from 'ws';
import type { Clock } from '../clock.js';
import { BaseChannel, CloseCode } from './channel.js';
import { TransportError } from './errors.js';

export interface WsChannelOptions {
  remote: string;
  maxFrame: number;
  clock: Clock;
  closeTimeoutMs?: number;
}

/** Maps a `ws` error to our family; the ws error stays in `cause`. */
function classify(err: Error): TransportError {
  const code = (err as { code?: string }).code;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return new TransportError('TOO_LARGE', 'peer sent a message over maxFrame', { cause: err });
  if (typeof code === 'string' && code.startsWith('WS_ERR_')) return new TransportError('BAD_FRAME', `peer broke WebSocket framing (${code})`, { cause: err });
  return new TransportError('SEND_FAILED', `socket failed: ${err.message}`, { cause: err });
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  // A plain view over ws's Buffer, so consumers never see Buffer-specific behaviour.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class WsChannel extends BaseChannel {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket, opts: WsChannelOptions) {
    super(opts);
    this.#ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('error', (err: Error) => {
      if (!this.failure) this.failure = classify(err);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        if (!this.failure) this.failure = new TransportError('BAD_FRAME', 'peer sent a text message');
        void this.close(CloseCode.UNSUPPORTED_DATA, 'binary frames only');
        return;
      }
      this.emitMessage(toBytes(data));
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.finish({ code, reason: reason.toString('utf8') });
    });
    if (ws.readyState !== ws.OPEN) this.terminate();
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  protected write(bytes: Uint8Array): void {
    if (this.#ws.readyState !== this.#ws.OPEN) throw new TransportError('CLOSED', `channel to ${this.remote} is closing`);
    this.#ws.send(bytes, { binary: true }, (err) => {
      if (err && this.state !== 'closed') this.destroy(new TransportError('SEND_FAILED', `write failed: ${err.message}`, { cause: err }));
    });
  }

  protected beginClose(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  protected terminate(): void {
    this.#ws.terminate();
    // Closed for us at once; ws's own 'close' (when the socket is gone) then finds nothing to do.
    this.finish({ code: CloseCode.ABNORMAL, reason: '' });
  }
}
