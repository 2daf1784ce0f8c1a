/**
 * bridge/: the mail bridge (DESIGN §11). SMTP submission and IMAP4rev1 on 127.0.0.1 so any mail
 * client can send and read onionpost mail; it talks to the node only through a MailPort.
 */
export { createMailBridge, BRIDGE_HOST, type MailBridge, type MailBridgeOptions } from './bridge.js';
export { BridgeError, type BridgeErrorCode } from './errors.js';
export { NAME_DOMAIN, nameMailAddress, onionMailAddress, parseAddress, peerMailbox, type ParsedAddress } from './address.js';
export type { FolderEntry, FolderName, FolderStore, MailAttachment, MailDraft, MailMessage, MailPeer, MailPort, MailRecipient } from './port.js';
