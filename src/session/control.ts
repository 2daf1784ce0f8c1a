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
import { isOnionAddress } from '../crypto/index.js';
import { SessionError } from './errors.js';
import type { SessionMessage } from './message.js';

/** The most ids one read receipt carries (its body is then 8,447 bytes: the 16 KiB bucket). */
export const MAX_READ_IDS = 256;

const HEX_ID = /^[0-9a-f]{32}$/;

const badAs = (name: string) => (what: string) => new SessionError('BAD_MESSAGE', `bad ${name}: ${what}`);
const bad = badAs('read receipt');

type ControlFields = Pick<SessionMessage, 'kind' | 'subject' | 'body' | 'threadId' | 'inReplyTo' | 'attachments'>;

/** The body of a control message of `kind`; BAD_MESSAGE (via `fail`) if it is another kind or sets anything but its body. */
function controlBody(m: ControlFields, kind: SessionMessage['kind'], fail: (what: string) => SessionError): string {
  if (m.kind !== kind) throw fail(`kind ${m.kind}`);
  if (m.subject !== '' || m.threadId !== null || m.inReplyTo !== null || m.attachments.length > 0) throw fail('only the body may be set');
  return m.body;
}

const ONION = /^[a-z2-7]{56}\.onion$/;

/** A v3 onion address exactly as §9.2 writes it: lowercase, with ".onion" (isOnionAddress also takes upper case and no suffix), checksum and version valid. */
function isV3Onion(s: string): boolean {
  return ONION.test(s) && isOnionAddress(s);
}

/** The body of a read receipt for `ids` (32 lowercase hex each; 1..MAX_READ_IDS, distinct). */
export function readReceiptBody(ids: readonly string[]): string {
  checkIds(ids);
  return ids.join('\n');
}

/** The ids a read receipt names; BAD_MESSAGE unless it is exactly as §9.2 writes it. */
export function parseReadReceipt(m: ControlFields): string[] {
  const ids = controlBody(m, 'read', bad).split('\n');
  checkIds(ids);
  return ids;
}

function checkIds(ids: readonly string[]): void {
  if (ids.length === 0 || ids.length > MAX_READ_IDS) throw bad(`${ids.length} ids (1..${MAX_READ_IDS})`);
  for (const id of ids) if (!HEX_ID.test(id)) throw bad('an id is not 32 lowercase hex characters');
  if (new Set(ids).size !== ids.length) throw bad('an id appears twice');
}

/** One private queue of the handout's sender at one of its mailbox providers (PROTOCOL.md §14.2). */
export interface HandedQueue {
  /** The provider's onion address. */
  provider: string;
  /** 16 bytes. */
  queue: Uint8Array;
  /** 32 bytes: what a deposit there must carry. */
  writeCap: Uint8Array;
}

/** The most queues one handout names (a bundle lists at most this many providers). */
export const MAX_HANDED_QUEUES = 8;

const HEX = (n: number) => new RegExp(`^[0-9a-f]{${n}}$`);
const QUEUE_HEX = HEX(32);
const CAP_HEX = HEX(64);
const badHandout = badAs('queue handout');

/**
 * Queue handout, kind 4: its sender's private queues for the recipient, one line per provider,
 * `<onion> <queue hex> <write cap hex>`, joined by "\n"; 0..MAX_HANDED_QUEUES lines (none: use my
 * public queues), no provider twice.
 */
export function queueHandoutBody(queues: readonly HandedQueue[]): string {
  const body = queues.map((q) => `${q.provider} ${Buffer.from(q.queue).toString('hex')} ${Buffer.from(q.writeCap).toString('hex')}`).join('\n');
  checkHandout(queues.map((q) => q.provider), body.length === 0 ? [] : body.split('\n'));
  return body;
}

/** The queues a handout names; BAD_MESSAGE unless it is exactly as §9.2 writes it. */
export function parseQueueHandout(m: ControlFields): HandedQueue[] {
  const body = controlBody(m, 'queues', badHandout);
  const lines = body.length === 0 ? [] : body.split('\n');
  const queues = lines.map((line) => {
    const [provider, queue, cap, ...rest] = line.split(' ');
    if (rest.length > 0 || provider === undefined || queue === undefined || cap === undefined) throw badHandout('a line is not "<onion> <queue> <write capability>"');
    if (!QUEUE_HEX.test(queue) || !CAP_HEX.test(cap)) throw badHandout('a queue or capability is not lowercase hex of its length');
    return { provider, queue: new Uint8Array(Buffer.from(queue, 'hex')), writeCap: new Uint8Array(Buffer.from(cap, 'hex')) };
  });
  checkHandout(queues.map((q) => q.provider), lines);
  return queues;
}

function checkHandout(providers: readonly string[], lines: readonly string[]): void {
  if (lines.length > MAX_HANDED_QUEUES) throw badHandout(`${lines.length} queues (at most ${MAX_HANDED_QUEUES})`);
  for (const p of providers) if (!isV3Onion(p)) throw badHandout('a provider is not a v3 onion address');
  if (new Set(providers).size !== providers.length) throw badHandout('a provider appears twice');
  for (const l of lines) if (!/^\S+ [0-9a-f]{32} [0-9a-f]{64}$/.test(l)) throw badHandout('a line is not "<onion> <queue> <write capability>"');
}

const badOnion = badAs('direct onion');

/**
 * Direct onion, kind 5: the onion address its sender's node is reachable at directly, for a user
 * who does not publish the onion its identity key names (`--hidden`: strangers reading the
 * registry can't tell when it is online). The body is that v3 onion address, or empty: "dial the
 * onion my identity key names again".
 */
export function directOnionBody(onion: string | null): string {
  if (onion !== null && !isV3Onion(onion)) throw badOnion('not a v3 onion address');
  return onion ?? '';
}

/** The onion a direct-onion message names (null: none); BAD_MESSAGE unless it is exactly as §9.2 writes it. */
export function parseDirectOnion(m: ControlFields): string | null {
  const body = controlBody(m, 'onion', badOnion);
  if (body === '') return null;
  if (!isV3Onion(body)) throw badOnion('not a v3 onion address');
  return body;
}
