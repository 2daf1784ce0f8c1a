/**
 * The node's side of the mail bridge: a MailPort (src/bridge/port.ts) made from the node's public
 * methods, its store and its event bus. This is the only file that knows both.
 */
import { MESSAGE_CAPACITY, messageContentSize } from '../session/index.js';
import { BridgeError, onionMailAddress, type MailMessage, type MailPort } from '../bridge/index.js';
import { isControlKind } from '../store/index.js';
import type { OnionpostNode } from './node.js';

const CHANGES = new Set(['message.received', 'message.state', 'message.read']);

export function createMailPort(node: OnionpostNode): MailPort {
  return {
    ownAddress: onionMailAddress(node.identity.onion),
    maxContentBytes: MESSAGE_CAPACITY,
    get folders() {
      return node.store.mailFolders;
    },
    async resolve(address, { signal }) {
      const to = address.kind === 'onion' ? address.onion : address.name;
      const r = await node.resolveRecipient(to, signal);
      return { to, onion: r.onion, label: r.label };
    },
    async send(d) {
      const size = messageContentSize(d);
      if (size > MESSAGE_CAPACITY) throw new BridgeError('TOO_LARGE', `subject, text and files take ${size} bytes; an onionpost message carries at most ${MESSAGE_CAPACITY}`);
      const r = await node.send({
        to: d.to, subject: d.subject, body: d.body, kind: 'mail', attachments: d.attachments,
        ...(d.threadId ? { threadId: d.threadId } : {}), ...(d.inReplyTo ? { inReplyTo: d.inReplyTo } : {}),
      });
      return { id: r.id, state: r.state };
    },
    getMessage(id): MailMessage | null {
      const m = node.store.getMessage(id);
      if (!m || isControlKind(m.kind)) return null;
      const contact = node.store.getContact(m.peerIdentity);
      return {
        id: m.id, direction: m.direction, kind: m.kind, subject: m.subject ?? '', body: m.body,
        attachments: m.attachmentCount > 0 ? node.store.getAttachments(m.id) : [],
        peer: { onion: m.peerOnion, registryName: contact?.registryName ?? null, label: contact?.alias ?? m.peerLabel },
        threadId: m.threadId, inReplyTo: m.inReplyTo, createdAt: m.createdAt, receivedAt: m.receivedAt, expiresAt: m.expiresAt,
        state: m.state, stateReason: m.stateReason,
      };
    },
    subscribe(listener) {
      return node.events.subscribe((ev) => {
        if (CHANGES.has(ev.type)) listener();
      });
    },
  };
}
