/**
 * A submitted RFC 5322 message → the content of an onionpost message. Parsing is mailparser's
 * (the nodemailer project's MIME parser); this file only decides what we take from its result:
 *
 *   Subject            subject (cut to 998 UTF-8 bytes, the envelope's limit, at a character)
 *   text/plain         body; without one, the HTML part converted to text (mailparser's html-to-text)
 *   every attachment   a file (name, media type, bytes), at most 16
 *   In-Reply-To        inReplyTo, when it names a message we wrote (<id@onionpost.onion>)
 *   References         the thread: the first of ours in References or In-Reply-To (the port looks
 *                      up the parent's thread when it has the parent)
 *
 * Refused (BridgeError BAD_MIME): input mailparser cannot read, or without a header section.
 */
// mailparser (with html-to-text and iconv-lite, ~15 MB) is imported at the first submission, not
// with the bridge: a node whose user never sends through a mail client never loads it.
import { BridgeError } from './errors.js';
import { idFromMessageId } from './mime.js';
import type { MailAttachment } from './port.js';

export const MAX_SUBJECT_BYTES = 998;
export const MAX_FILES = 16;

export interface SubmittedContent {
  subject: string;
  body: string;
  attachments: MailAttachment[];
  /** Our message ids this one answers: the parent, then the rest of References (oldest first). */
  inReplyTo: string | null;
  references: string[];
}

function cutUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/** The header section must start the message: `Name: value` lines up to the first empty line. */
function hasHeaderSection(raw: Buffer): boolean {
  const head = raw.subarray(0, Math.min(raw.length, 64 * 1024)).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const block = end < 0 ? head : head.slice(0, end);
  if (block.includes('\0')) return false;
  const lines = block.split(/\r?\n/);
  return lines.length > 0 && /^[\x21-\x39\x3b-\x7e]+:/.test(lines[0]!) && lines.every((l) => /^[\x21-\x39\x3b-\x7e]+:/.test(l) || /^[ \t]/.test(l));
}

export async function parseSubmission(raw: Buffer): Promise<SubmittedContent> {
  if (!hasHeaderSection(raw)) throw new BridgeError('BAD_MIME', 'the message has no RFC 5322 header section');
  const { simpleParser } = await import('mailparser');
  let parsed;
  try {
    parsed = await simpleParser(raw, { skipImageLinks: true, skipTextLinks: true, skipTextToHtml: true, maxHtmlLengthToParse: 1024 * 1024 });
  } catch (err) {
    throw new BridgeError('BAD_MIME', 'the message could not be parsed as MIME', { cause: err });
  }
  const files = parsed.attachments;
  if (files.length > MAX_FILES) throw new BridgeError('TOO_LARGE', `${files.length} attachments; an onionpost message carries at most ${MAX_FILES}`);
  const refs = (Array.isArray(parsed.references) ? parsed.references : parsed.references ? parsed.references.split(/\s+/) : [])
    .map(idFromMessageId).filter((x): x is string => !!x);
  const inReplyTo = parsed.inReplyTo ? idFromMessageId(parsed.inReplyTo.split(/\s+/)[0] ?? '') : null;
  // mailparser fills `text` from the HTML part when there is no text/plain one.
  const body = parsed.text ?? '';
  return {
    subject: cutUtf8((parsed.subject ?? '').replace(/[\r\n]+/g, ' '), MAX_SUBJECT_BYTES),
    body: body.replace(/\r\n/g, '\n'),
    attachments: files.map((a, i) => ({
      name: cutUtf8((a.filename ?? `attachment-${i + 1}`).replace(/[\x00-\x1f/\\]/g, '_'), 255),
      mediaType: cutUtf8(a.contentType || 'application/octet-stream', 255),
      data: new Uint8Array(a.content.buffer, a.content.byteOffset, a.content.byteLength),
    })),
    inReplyTo,
    references: refs,
  };
}
