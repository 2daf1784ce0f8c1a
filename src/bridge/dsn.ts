/**
 * Bounces: an outgoing message that failed, expired or was held (its recipient's keys changed
 * without a rotation statement) comes back to INBOX as a delivery status notification, RFC 3464,
 * so a mail client shows it the way it shows any bounce:
 *
 *   multipart/report; report-type=delivery-status
 *     ├─ text/plain                 what happened, for people
 *     ├─ message/delivery-status    Reporting-MTA, Arrival-Date; Final-Recipient, Action, Status,
 *     │                             Diagnostic-Code (X-Onionpost; the node's reason)
 *     └─ text/rfc822-headers        the original message's headers (so the client links them)
 *
 *   failed  → Action: failed,  Status: 5.0.0
 *   expired → Action: failed,  Status: 5.4.7 (delivery time expired)
 *   held    → Action: delayed, Status: 4.7.0 (security: waits for the user's approval)
 */
import { peerMailbox } from './address.js';
import { MESSAGE_ID_DOMAIN, messageId, renderMessage, rfc2822Date, type Mailbox, type RenderedMessage } from './mime.js';
import type { MailMessage } from './port.js';
import { renderMail } from './render.js';

export const MAILER_DAEMON: Mailbox = { name: 'onionpost delivery', address: `mailer-daemon@${MESSAGE_ID_DOMAIN}` };

export type BounceState = 'failed' | 'expired' | 'held';

const STATUS: Record<BounceState, { action: string; status: string; title: string; what: string }> = {
  failed: { action: 'failed', status: '5.0.0', title: 'Undelivered mail', what: 'could not be delivered and will not be retried' },
  expired: { action: 'failed', status: '5.4.7', title: 'Undelivered mail (expired)', what: 'was not delivered before its time to live ran out' },
  held: { action: 'delayed', status: '4.7.0', title: 'Mail held', what: "is held: the recipient's keys changed without a statement signed by their old key. Check with them, then approve the new keys (onionpost contacts approve <alias>) to send it, or it expires" },
};

/** The bounce for `m` (an outgoing message) in `state`, dated `at` (when the bridge learnt of it). */
export function renderBounce(m: MailMessage, state: BounceState, own: Mailbox, at: number): RenderedMessage {
  const s = STATUS[state];
  const recipient = peerMailbox({ onion: m.peer.onion, registryName: m.peer.registryName, display: m.peer.label });
  const reason = (m.stateReason ?? state).replace(/[^\x20-\x7e]/g, '?');
  const human = [
    `Your message to ${recipient.address}${m.subject ? ` ("${m.subject}")` : ''}, sent ${rfc2822Date(m.createdAt)},`,
    `${s.what}.`,
    '',
    `Reason: ${reason}`,
    '',
    `Message id: ${m.id}`,
    '',
  ].join('\r\n');
  const status = [
    `Reporting-MTA: dns; ${MESSAGE_ID_DOMAIN}`,
    `Original-Envelope-Id: ${m.id}`,
    `Arrival-Date: ${rfc2822Date(m.createdAt)}`,
    '',
    `Final-Recipient: rfc822; ${recipient.address}`,
    `Action: ${s.action}`,
    `Status: ${s.status}`,
    `Diagnostic-Code: X-Onionpost; ${reason}`,
    `Last-Attempt-Date: ${rfc2822Date(at)}`,
    ...(state === 'held' ? [`Will-Retry-Until: ${rfc2822Date(m.expiresAt)}`] : []),
    '',
  ].join('\r\n');
  const original = renderMail(m, own, null).root.header;
  const subject = `${s.title}: ${m.subject || '(no subject)'}`;
  return renderMessage(
    {
      date: at, from: MAILER_DAEMON, to: own, subject, messageId: `<dsn.${m.id}.${state}@${MESSAGE_ID_DOMAIN}>`,
      inReplyTo: messageId(m.id), references: [messageId(m.id)], extra: [['Auto-Submitted', 'auto-replied'], ['X-Onionpost-Id', m.id], ['X-Onionpost-State', state]],
    },
    {
      subtype: 'report', params: [['report-type', 'delivery-status']],
      parts: [
        { type: 'text', subtype: 'plain', params: [['charset', 'utf-8']], content: Buffer.from(human, 'utf8') },
        { type: 'message', subtype: 'delivery-status', content: Buffer.from(status, 'latin1') },
        { type: 'text', subtype: 'rfc822-headers', content: original },
      ],
    },
    `dsn.${m.id}.${state}`, at, human,
  );
}
