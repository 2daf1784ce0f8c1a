/**
 * Receipts (PROTOCOL.md §10): a 16-byte MAC under the message's receipt key, which only its sender
 * and its receiver know. It proves the commit to the sender and nothing to anyone else.
 *
 *   MAC = HMAC-SHA256(RCK, "onionpost/v2/receipt" ‖ message id (16) ‖ SHA256(envelope))[0..16]
 */
import { timingSafeEqual } from 'node:crypto';
import { checkLength, hmac, label } from './primitives.js';

export const RECEIPT_MAC_BYTES = 16;
const RECEIPT_LABEL = label('onionpost/v2/receipt');

export function receiptMac(receiptKey: Uint8Array, messageId: Uint8Array, envelopeHash: Uint8Array): Uint8Array {
  checkLength(receiptKey, 32, 'receipt key');
  checkLength(messageId, 16, 'message id');
  checkLength(envelopeHash, 32, 'envelope hash');
  return hmac(receiptKey, RECEIPT_LABEL, messageId, envelopeHash).slice(0, RECEIPT_MAC_BYTES);
}

/** Constant-time check of a receipt MAC the peer sent. */
export function verifyReceiptMac(receiptKey: Uint8Array, messageId: Uint8Array, envelopeHash: Uint8Array, mac: Uint8Array): boolean {
  if (mac.length !== RECEIPT_MAC_BYTES) return false;
  return timingSafeEqual(receiptMac(receiptKey, messageId, envelopeHash), mac);
}
