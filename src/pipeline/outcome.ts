/**
 * What a delivery attempt came to, from what the peer answered or from the error the attempt threw.
 * Errors are classified by their typed retry advice (OnionpostError.retryAdvice, set where the
 * error was made: Tor's SOCKS reply, our tor being down, …) and otherwise by family:
 *
 *   advice 'never'             → failed (the address or request is wrong; retrying cannot help)
 *   advice 'soon' | 'later'    → retry on the backoff schedule ('soon'). Tor's 'later' means "the
 *                                peer looks offline", the normal case the schedule (2 s doubling to
 *                                2 min, then the slow phase) is made for: a peer back within a
 *                                minute gets its mail within a minute.
 *   Crypto/SessionError        → retry 'later' (a bundle that does not verify will not in seconds)
 *   other OnionpostError       → retry 'soon' (timeouts, closed connections: outcome unknown)
 *   anything else              → retry 'soon' (code UNEXPECTED; the caller logs it)
 */
import { CryptoError } from '../crypto/index.js';
import { SessionError } from '../session/index.js';
import { OnionpostError } from '../errors.js';
import { TransportError } from '../transport/index.js';
import type { DeliveryOutcome } from '../outbox/index.js';
import { RejectCode, rejectCodeName, type DeliverResult } from '../protocol/index.js';

/** The outcome for an error thrown by a delivery attempt. */
export function failureOutcome(err: unknown): DeliveryOutcome {
  if (err instanceof OnionpostError) {
    const advice = err.retryAdvice;
    if (advice?.retryClass === 'never') return { kind: 'failed', code: advice.code, reason: `${err.message} [${advice.code}]` };
    if (advice) return { kind: 'retry', code: advice.code, when: 'soon' };
    if (err instanceof CryptoError || err instanceof SessionError) return { kind: 'retry', code: err.code, when: 'later' };
    return { kind: 'retry', code: err.code, when: 'soon' };
  }
  return { kind: 'retry', code: 'UNEXPECTED', when: 'soon' };
}

/** The outcome for a REJECT answer. */
export function rejectOutcome(res: Extract<DeliverResult, { kind: 'reject' }>): DeliveryOutcome {
  const code = rejectCodeName(res.code);
  if (!res.retryable) return { kind: 'failed', code, reason: res.reason || code };
  return { kind: 'retry', code, when: res.code === RejectCode.STORAGE_FULL ? 'later' : res.code === RejectCode.BUSY ? 'busy' : 'soon' };
}

/**
 * Tor's answers that mean the onion is not there now: its 'later' class (no descriptor, …) and
 * an introduction that failed or timed out (a descriptor still cached after the service left);
 * and a dial that used its whole budget without an answer (what Tor does for a while after a
 * service left, the tor-tier test found). A message is left at the recipient's providers on these
 * at once (issue 11, item 7); a wrong guess costs only a deposit.
 */
const OFFLINE_CODES: ReadonlySet<string> = new Set(['ONION_INTRO_FAILED', 'ONION_INTRO_TIMEOUT']);
export function looksOffline(err: OnionpostError): boolean {
  if (err instanceof TransportError && err.code === 'DIAL_TIMEOUT') return true;
  const a = err.retryAdvice;
  return a !== undefined && (a.retryClass === 'later' || OFFLINE_CODES.has(a.code));
}
