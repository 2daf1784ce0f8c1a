/**
 * Control messages (PROTOCOL.md §9.2): inner messages (§9.1) of a kind that is not mail or chat.
 * They travel like any message — queued, encrypted once, retried, deposited at providers, receipted —
 * but no listing shows them: the receiver applies them and stores only their receipt.
 *
 * Read receipt, kind 3: the sender of some chat messages learns that the recipient read them. Sent
 * only when the recipient allows it.
 *
 *   subject      empty
 *   body         the ids read, each 32 lowercase hex characters, joined by "\n" (no trailing
 *                newline), 1..MAX_READ_IDS of them, no id twice
 *   thread id, in-reply-to   zero; no attachments
 *
 * Ids the receiver never sent to this peer are ignored (they mark nothing), so a read receipt can't
 * touch another contact's messages.
 */
import { SessionError } from './errors.js';
import type { SessionMessage } from './message.js';

/** The most ids one read receipt carries (its body is then 8,447 bytes: the 16 KiB bucket). */
export const MAX_READ_IDS = 256;

const HEX_ID = /^[0-9a-f]{32}$/;

const bad = (what: string) => new SessionError('BAD_MESSAGE', `bad read receipt: ${what}`);

/** The body of a read receipt for `ids` (32 lowercase hex each; 1..MAX_READ_IDS, distinct). */
export function readReceiptBody(ids: readonly string[]): string {
  checkIds(ids);
  return ids.join('\n');
}

/** The ids a read receipt names; BAD_MESSAGE unless it is exactly as §9.2 writes it. */
export function parseReadReceipt(m: Pick<SessionMessage, 'kind' | 'subject' | 'body' | 'threadId' | 'inReplyTo' | 'attachments'>): string[] {
  if (m.kind !== 'read') throw bad(`kind ${m.kind}`);
  if (m.subject !== '' || m.threadId !== null || m.inReplyTo !== null || m.attachments.length > 0) throw bad('only the body may be set');
  const ids = m.body.split('\n');
  checkIds(ids);
  return ids;
}

function checkIds(ids: readonly string[]): void {
  if (ids.length === 0 || ids.length > MAX_READ_IDS) throw bad(`${ids.length} ids (1..${MAX_READ_IDS})`);
  for (const id of ids) if (!HEX_ID.test(id)) throw bad('an id is not 32 lowercase hex characters');
  if (new Set(ids).size !== ids.length) throw bad('an id appears twice');
}
