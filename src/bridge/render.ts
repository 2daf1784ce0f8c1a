/**
 * An onionpost message as the mail client sees it (see mime.ts for the layout):
 *
 *   Message-ID   <id@onionpost.onion>, In-Reply-To and References from the thread, so replies
 *                thread in the client and a reply's In-Reply-To leads back to the message
 *   From / To    the peer by registry name (name@onionpost.onion) or onion (mail@<onion>)
 *   X-Onionpost-Id, X-Onionpost-Kind (chat), X-Onionpost-State (Sent: the delivery state of this
 *   copy), X-Onionpost-Reason (why it failed or is held)
 */
import { peerMailbox } from './address.js';
import { messageId, renderMessage, safeMediaType, type Mailbox, type PartSpec, type RenderedMessage } from './mime.js';
import type { MailMessage } from './port.js';

export function renderMail(m: MailMessage, own: Mailbox, version: string | null): RenderedMessage {
  const peer = peerMailbox({ onion: m.peer.onion, registryName: m.peer.registryName, display: m.peer.label });
  const [from, to] = m.direction === 'in' ? [peer, own] : [own, peer];
  const text: PartSpec = { type: 'text', subtype: 'plain', params: [['charset', 'utf-8']], content: Buffer.from(m.body, 'utf8') };
  const body: PartSpec = m.attachments.length === 0 ? text : {
    subtype: 'mixed',
    parts: [text, ...m.attachments.map((a, i): PartSpec => {
      const [type, subtype] = safeMediaType(a.mediaType);
      const filename = a.name.trim() || `attachment-${i + 1}`;
      return { type, subtype, params: [['name', filename]], disposition: { type: 'attachment', filename }, content: Buffer.from(a.data) };
    })],
  };
  const parent = m.inReplyTo ? messageId(m.inReplyTo) : null;
  const references = [...new Set([m.threadId !== m.id ? messageId(m.threadId) : null, parent].filter((x): x is string => !!x))];
  const extra: [string, string][] = [['X-Onionpost-Id', m.id]];
  if (m.kind === 'chat') extra.push(['X-Onionpost-Kind', 'chat']);
  if (m.direction === 'out') {
    const state = version ?? m.state;
    extra.push(['X-Onionpost-State', state]);
    if (m.stateReason && state !== 'delivered' && state !== 'queued' && state !== 'sending') extra.push(['X-Onionpost-Reason', m.stateReason.replace(/[^\x20-\x7e]/g, '?')]);
  }
  const subject = m.subject || (m.kind === 'chat' ? '(chat)' : '');
  return renderMessage(
    { date: m.createdAt, from, to, subject, messageId: messageId(m.id), inReplyTo: parent, references, extra },
    body, m.id, m.direction === 'in' ? (m.receivedAt ?? m.createdAt) : m.createdAt, m.body,
  );
}
