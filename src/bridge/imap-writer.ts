/**
 * IMAP response writer (RFC 3501 §7): values in, bytes out. No I/O.
 *
 * A string goes out quoted when it is short 7-bit text without CR, LF, NUL, `"` or `\` needing
 * more than an escape; anything else (8-bit, long, multi-line, message bodies) as a literal
 * `{n}\r\n<n octets>`, which is always safe.
 */

/** A value in a response. `Atom` is sent as is; a plain JS string is an IMAP string (quoted or literal). */
export type ImapValue = number | null | string | Buffer | Atom | ImapValue[];

export class Atom {
  constructor(readonly value: string) {}
}

export const atom = (value: string): Atom => new Atom(value);

const QUOTABLE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function encode(v: ImapValue, out: Buffer[]): void {
  if (v === null) out.push(Buffer.from('NIL'));
  else if (typeof v === 'number') out.push(Buffer.from(String(Math.trunc(v))));
  else if (v instanceof Atom) out.push(Buffer.from(v.value, 'latin1'));
  else if (Array.isArray(v)) {
    out.push(Buffer.from('('));
    v.forEach((x, i) => {
      if (i > 0) out.push(Buffer.from(' '));
      encode(x, out);
    });
    out.push(Buffer.from(')'));
  } else if (typeof v === 'string' && v.length <= 1024 && QUOTABLE.test(v)) {
    out.push(Buffer.from(`"${v}"`, 'latin1'));
  } else {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    out.push(Buffer.from(`{${bytes.length}}\r\n`), bytes);
  }
}

/** Serializes values separated by spaces (no CRLF). */
export function serialize(...values: ImapValue[]): Buffer {
  const out: Buffer[] = [];
  values.forEach((v, i) => {
    if (i > 0) out.push(Buffer.from(' '));
    encode(v, out);
  });
  return Buffer.concat(out);
}

/** `* <text>\r\n`, where text is plain response text (no literals). */
export function untagged(text: string): Buffer {
  return Buffer.from(`* ${text}\r\n`, 'utf8');
}

/** `* <values…>\r\n`. */
export function untaggedValues(...values: ImapValue[]): Buffer {
  return Buffer.concat([Buffer.from('* '), serialize(...values), Buffer.from('\r\n')]);
}

/** `<tag> OK|NO|BAD [code] text\r\n`. Text is stripped of CR/LF so it cannot inject a line. */
export function tagged(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, code?: string): Buffer {
  const clean = text.replace(/[\r\n]+/g, ' ');
  return Buffer.from(`${tag} ${status} ${code ? `[${code}] ` : ''}${clean}\r\n`, 'utf8');
}

/** `* n FETCH (items…)\r\n`: items are name/value pairs, names are atoms (`BODY[1]<0>`). */
export function fetchResponse(seq: number, items: [string, ImapValue][]): Buffer {
  const flat: ImapValue[] = [];
  for (const [name, value] of items) flat.push(atom(name), value);
  return Buffer.concat([Buffer.from(`* ${seq} FETCH `), serialize(flat), Buffer.from('\r\n')]);
}
