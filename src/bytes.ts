/**
 * Bounds-checked big-endian byte reading and writing for the binary formats (envelopes, bundles,
 * frames). A reader never reads past its end: it throws the error its owner supplies, so each format
 * reports failures in its own error family.
 */
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export class ByteWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  bytes(b: Uint8Array): this {
    this.#chunks.push(b);
    this.#length += b.length;
    return this;
  }

  u8(n: number): this {
    return this.bytes(Uint8Array.of(n & 0xff));
  }

  u16(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`u16 out of range: ${n}`);
    return this.bytes(Uint8Array.of(n >>> 8, n & 0xff));
  }

  u32(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`u32 out of range: ${n}`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    return this.bytes(b);
  }

  /** Unsigned 64-bit from a safe integer (timestamps in ms). */
  u64(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`u64 out of range: ${n}`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n));
    return this.bytes(b);
  }

  /** Length-prefixed (u8/u16/u32) byte string. */
  varBytes(b: Uint8Array, prefix: 8 | 16 | 32): this {
    if (prefix === 8) this.u8Checked(b.length);
    else if (prefix === 16) this.u16(b.length);
    else this.u32(b.length);
    return this.bytes(b);
  }

  /** Length-prefixed UTF-8 string. */
  string(s: string, prefix: 8 | 16 | 32): this {
    return this.varBytes(utf8.encode(s), prefix);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  private u8Checked(n: number): void {
    if (n > 0xff) throw new RangeError(`u8 length out of range: ${n}`);
    this.u8(n);
  }
}

export class ByteReader {
  #buf: Uint8Array;
  #view: DataView;
  #off = 0;
  #fail: (what: string) => Error;

  /** `fail(what)` builds the error thrown when the input is too short or malformed. */
  constructor(buf: Uint8Array, fail: (what: string) => Error) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#fail = fail;
  }

  get offset(): number {
    return this.#off;
  }

  get remaining(): number {
    return this.#buf.length - this.#off;
  }

  #need(n: number, what: string): void {
    if (n > this.remaining) throw this.#fail(`truncated ${what}`);
  }

  bytes(n: number, what = 'bytes'): Uint8Array {
    this.#need(n, what);
    const out = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }

  u8(what = 'u8'): number {
    this.#need(1, what);
    return this.#buf[this.#off++]!;
  }

  u16(what = 'u16'): number {
    this.#need(2, what);
    const v = this.#view.getUint16(this.#off);
    this.#off += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.#need(4, what);
    const v = this.#view.getUint32(this.#off);
    this.#off += 4;
    return v;
  }

  u64(what = 'u64'): number {
    this.#need(8, what);
    const v = this.#view.getBigUint64(this.#off);
    this.#off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#fail(`${what} too large`);
    return Number(v);
  }

  varBytes(prefix: 8 | 16 | 32, max: number, what = 'field'): Uint8Array {
    const n = prefix === 8 ? this.u8(what) : prefix === 16 ? this.u16(what) : this.u32(what);
    if (n > max) throw this.#fail(`${what} longer than ${max}`);
    return this.bytes(n, what);
  }

  string(prefix: 8 | 16 | 32, max: number, what = 'string'): string {
    const b = this.varBytes(prefix, max, what);
    try {
      return utf8Strict.decode(b);
    } catch {
      throw this.#fail(`${what} is not UTF-8`);
    }
  }

  /** Throws unless every byte was consumed. */
  end(what = 'input'): void {
    if (this.remaining !== 0) throw this.#fail(`${this.remaining} trailing bytes after ${what}`);
  }
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new TypeError('not a hex string');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const w = new ByteWriter();
  for (const p of parts) w.bytes(p);
  return w.finish();
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function utf8Bytes(s: string): Uint8Array {
  return utf8.encode(s);
}
