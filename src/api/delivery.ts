/**
 * Why an outgoing message is where it is, in plain words, from what the store recorded about its
 * attempts: "bob's node has been offline since 14:02; next try in 3 min" instead of
 * "queued (ONION_DESC_NOT_FOUND)". Pure: the API attaches `delivery` to outgoing summaries; the
 * web UI and the CLI add the times in the reader's own clock (`deliveryLine`).
 */
import type { Attempt, StoredMessage } from '../store/index.js';

export interface DeliveryView {
  /** A sentence without times, e.g. "bob's node has been offline". */
  words: string;
  /** Since when the problem lasts (the first failed attempt in the current run), ms. */
  since?: number;
  /** When the outbox tries again (queued only), ms. */
  nextAttemptAt?: number;
  /** The code behind the words, for scripts (never shown alone). */
  code?: string;
}

/** The peer is not answering: their node, or their onion service, is down or unreachable. */
const OFFLINE = new Set([
  'ONION_DESC_NOT_FOUND', 'ONION_DESC_INVALID', 'ONION_INTRO_FAILED', 'ONION_INTRO_TIMEOUT', 'ONION_REND_FAILED', 'GENERAL_FAILURE',
  'HOST_UNREACHABLE', 'NETWORK_UNREACHABLE', 'CONNECTION_REFUSED', 'TTL_EXPIRED', 'TIMEOUT', 'PEER_UNKNOWN', 'CLOSED', 'UNREACHABLE',
]);
/** Our own side: our tor is down or not yet bootstrapped. */
const OUR_TOR = new Set(['PROXY_UNREACHABLE', 'PROXY_PROTOCOL', 'TOR_DOWN', 'NOT_BOOTSTRAPPED']);

function problem(code: string | null, name: string): string {
  if (!code) return `${name}'s node did not answer`;
  if (OFFLINE.has(code)) return `${name}'s node has been offline`;
  if (OUR_TOR.has(code)) return 'your Tor connection has been down';
  if (code === 'BUSY') return `${name}'s node is busy and asked to wait a moment`;
  if (code === 'STORAGE_FULL') return `${name}'s node has been out of storage`;
  if (code === 'CLOCK_SKEW') return `${name}'s clock and yours disagree by more than a day`;
  if (code === 'BAD_RECEIPT') return `${name}'s node answered, but its receipt did not check out`;
  if (code === 'BAD_BUNDLE' || code === 'BAD_SIGNATURE' || code === 'EXPIRED_BUNDLE') return `${name}'s node sent keys that do not check out`;
  if (code === 'STORE') return 'this node could not record the attempt (its disk may be full)';
  return `${name}'s node has not taken it`;
}

/** What the outbox records about a peer it backs off from (Store.peerState). */
export interface PeerBackoff {
  /** Failed steps since the peer's last success. */
  failures: number;
  lastErrorCode: string | null;
}

/**
 * The plain-words view of an outgoing message, or null for one that was delivered (or incoming).
 * `attempts` are the message's attempts, oldest first (Store.listAttempts); `peer` is the outbox's
 * backoff for the recipient: while a peer is down the outbox probes it with one message at a time,
 * so the others wait on the peer without attempts of their own.
 */
export function deliveryView(m: StoredMessage, attempts: readonly Attempt[], name: string, peer?: PeerBackoff | null): DeliveryView | null {
  if (m.direction !== 'out' || m.state === 'delivered') return null;
  const code = m.lastErrorCode ?? undefined;
  if ((m.state === 'queued' || m.state === 'sending') && m.mailboxes.length > 0) {
    const n = m.mailboxes.length;
    return {
      words: `${name}'s node is offline: left at ${n === 1 ? 'one of their mailbox providers' : `${n} of their mailbox providers`} until they fetch it`,
      ...(m.state === 'queued' && m.nextAttemptAt ? { nextAttemptAt: m.nextAttemptAt } : {}), code: 'IN_MAILBOX',
    };
  }
  switch (m.state) {
    case 'held':
      return { words: `held until you review ${name}'s key change (in Contacts)`, ...(code ? { code } : {}) };
    case 'sending':
      return { words: `being handed to ${name}'s node now` };
    case 'failed':
      if (m.lastErrorCode === 'CANCELLED') return { words: 'cancelled by you', code: 'CANCELLED' };
      if (m.lastErrorCode === 'KEY_REJECTED') return { words: `cancelled: you rejected ${name}'s new key`, code: 'KEY_REJECTED' };
      return { words: `not delivered: ${m.stateReason ?? problem(m.lastErrorCode, name)}`, ...(code ? { code } : {}) };
    case 'expired': {
      const last = attempts.at(-1);
      const why = last?.errorCode ? `; ${problem(last.errorCode, name)}` : '';
      return { words: `gave up when it expired, after ${m.attempts} attempt${m.attempts === 1 ? '' : 's'}${why}`, ...(code ? { code } : {}) };
    }
    case 'queued': {
      // The current run of failures: attempts since the last one that did not fail with a retry.
      let first: Attempt | undefined;
      for (let i = attempts.length - 1; i >= 0; i--) {
        const a = attempts[i]!;
        if (a.outcome !== 'retry' && a.outcome !== 'aborted') break;
        if (a.outcome === 'retry') first = a;
      }
      const nextAttemptAt = m.nextAttemptAt ?? undefined;
      if (!first && peer && peer.failures > 0) {
        const n = peer.failures;
        return {
          words: `${problem(peer.lastErrorCode, name)} (${n} ${n === 1 ? 'try' : 'tries'} so far)`, ...(nextAttemptAt ? { nextAttemptAt } : {}),
          ...(peer.lastErrorCode ? { code: peer.lastErrorCode } : {}),
        };
      }
      if (!first) return { words: m.attempts > 0 ? 'waiting to be sent again' : 'waiting to be sent', ...(nextAttemptAt ? { nextAttemptAt } : {}) };
      const last = [...attempts].reverse().find((a) => a.outcome === 'retry')!;
      return {
        words: problem(last.errorCode, name), since: first.startedAt, ...(nextAttemptAt ? { nextAttemptAt } : {}),
        ...(last.errorCode ? { code: last.errorCode } : {}),
      };
    }
    default:
      return null;
  }
}

/** "in 3 min", "in 40 s", "now". */
export function inWords(ms: number, now: number): string {
  const s = Math.round((ms - now) / 1000);
  if (s <= 1) return 'now';
  if (s < 60) return `in ${s} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `in ${min} min`;
  const h = Math.round(min / 60);
  return h < 48 ? `in ${h} h` : `in ${Math.round(h / 24)} days`;
}

/** The whole sentence, with times in `clock` (e.g. local "14:02"): what the CLI prints. */
export function deliveryLine(d: DeliveryView, state: string, now: number, clock: (ms: number) => string): string {
  let t = d.words;
  if (d.since) t += ` since ${clock(d.since)}`;
  if ((state === 'queued' || state === 'in_mailbox') && d.nextAttemptAt) t += d.nextAttemptAt <= now ? '; trying again now' : `; next try ${inWords(d.nextAttemptAt, now)}`;
  return t;
}
