/**
 * Reads the headers of client→server WebSocket frames (RFC 6455 §5.2) straight off the socket's byte
 * stream, before `ws` sees the bytes, so that the listener can charge every frame when it arrives
 * (data, continuation and control frames alike) and count fragments and buffered bytes per message.
 * It never buffers a payload: it remembers at most a 14-byte header.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-------+-+-------------+-------------------------------+
 *   |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *   |I|S|S|S|  (4)  |A|     (7)     |    (16 bits if len = 126,     |
 *   |N|V|V|V|       |S|             |     64 bits if len = 127)     |
 *   +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *   |  … extended length, continued  |  Masking key (32 bits, if MASK)  |
 *   +--------------------------------+----------------------------------+
 *   |                         Payload data …                           |
 *
 * Opcodes: 0x0 continuation, 0x1 text, 0x2 binary (data); 0x8 close, 0x9 ping, 0xA pong (control,
 * never fragmented, ≤ 125 bytes). A data message is a first data frame and its continuations, up to
 * the one with FIN set. `ws` validates everything else (RSV bits, masking, opcodes); the meter only
 * has to agree with it on where frames start and end, which the lengths alone decide.
 */

export interface FrameHeader {
  fin: boolean;
  opcode: number;
  /** Declared payload length; a 64-bit length beyond 2^53 reads as Infinity. */
  length: number;
  /** Opcode 0x8–0xF. */
  control: boolean;
}

/** What stopped a feed() early. */
export type MeterStop = 'start' | 'header';

export interface MeterHooks {
  /** At the first byte of each frame; return false to stop before it (the frame stays unread). */
  frameStart(): boolean;
  /** Once a header is complete; return false to stop (the caller cuts the connection). */
  header(h: FrameHeader): boolean;
}

export class WsFrameMeter {
  readonly #hdr = new Uint8Array(14);
  #hdrLen = 0;
  /** Header bytes this frame needs in all (2 until the length byte is known). */
  #hdrNeed = 2;
  /** Payload bytes of the current frame still to come; -1 while between frames or in a header. */
  #payloadLeft = -1;
  #current: FrameHeader | undefined;
  #inMessage = false;
  #messageBytes = 0;
  #fragments = 0;

  /** True while a data message has started and its final frame has not fully arrived. */
  get inMessage(): boolean {
    return this.#inMessage;
  }
  /** Payload bytes received so far of the data message in progress. */
  get messageBytes(): number {
    return this.#messageBytes;
  }
  /** Frames the data message in progress has come in so far. */
  get fragments(): number {
    return this.#fragments;
  }
  /** True when the stream is exactly between two frames. */
  get atBoundary(): boolean {
    return this.#hdrLen === 0 && this.#payloadLeft < 0;
  }

  /**
   * Walks `chunk` from `from`, calling the hooks; returns where it stopped: `chunk.length` when all
   * was read, else the offset of the frame whose start was refused (stop 'start', nothing of that
   * frame consumed) or just past the header that was refused (stop 'header').
   */
  feed(chunk: Uint8Array, from: number, hooks: MeterHooks): { at: number; stop?: MeterStop } {
    let i = from;
    while (i < chunk.length) {
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, chunk.length - i);
        this.#payloadLeft -= n;
        if (!this.#current!.control) this.#messageBytes += n;
        i += n;
        if (this.#payloadLeft === 0) this.#endFrame();
        continue;
      }
      if (this.#hdrLen === 0) {
        if (!hooks.frameStart()) return { at: i, stop: 'start' };
        this.#hdrNeed = 2;
      }
      this.#hdr[this.#hdrLen++] = chunk[i++]!;
      if (this.#hdrLen === 2) {
        const len7 = this.#hdr[1]! & 0x7f;
        const masked = (this.#hdr[1]! & 0x80) !== 0;
        this.#hdrNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
      }
      if (this.#hdrLen < this.#hdrNeed) continue;
      const h = this.#parseHeader();
      this.#hdrLen = 0;
      this.#current = h;
      if (!h.control) {
        if (!this.#inMessage) {
          this.#inMessage = true;
          this.#messageBytes = 0;
          this.#fragments = 0;
        }
        this.#fragments++;
      }
      if (!hooks.header(h)) return { at: i, stop: 'header' };
      this.#payloadLeft = h.length;
      if (h.length === 0) this.#endFrame();
    }
    return { at: i };
  }

  #parseHeader(): FrameHeader {
    const b = this.#hdr;
    const len7 = b[1]! & 0x7f;
    let length = len7;
    if (len7 === 126) length = (b[2]! << 8) | b[3]!;
    else if (len7 === 127) {
      const hi = ((b[2]! << 24) >>> 0) + (b[3]! << 16) + (b[4]! << 8) + b[5]!;
      const lo = ((b[6]! << 24) >>> 0) + (b[7]! << 16) + (b[8]! << 8) + b[9]!;
      length = hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + lo;
    }
    const opcode = b[0]! & 0x0f;
    return { fin: (b[0]! & 0x80) !== 0, opcode, length, control: opcode >= 0x8 };
  }

  #endFrame(): void {
    const h = this.#current!;
    this.#payloadLeft = -1;
    if (!h.control && h.fin) {
      this.#inMessage = false;
      this.#messageBytes = 0;
      this.#fragments = 0;
    }
  }
}
