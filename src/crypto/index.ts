/**
 * crypto/: pure functions over bytes. Identity and encryption keys, the onion address, signed key
 * bundles, rotation statements and registry-record signatures, the sealed envelope and receipts,
 * and the passphrase-encrypted key file (the only I/O here). Call `await cryptoReady()` once first.
 */
export { CryptoError, type CryptoErrorCode } from './errors.js';
export { cryptoReady, secureRandomBytes, wipe, type RandomBytes } from './sodium.js';
export {
  expandedSecretKey, generateIdentity, identityFromSecrets, isOnionAddress, onionAddress, onionKeyBlob,
  parseOnionAddress, sha256, signDomain, verifyDomain, withNewEncryptionKey,
  type EncryptionKey, type Identity, type IdentityKey, type OnionAddress,
} from './keys.js';
export {
  DEFAULT_BUNDLE_LIFETIME_MS, MAX_MAILBOXES, decodeBundle, decodeRotation, encodeBundle, encodeRotation,
  registryRecordBody, signBundle, signRegistryRecord, signRotation, verifyBundle, verifyRegistryRecord, verifyRotation,
  type KeyBundle, type RegistryRecordFields, type RotationStatement,
} from './bundle.js';
export {
  DEFAULT_TTL_MS, MAX_ATTACHMENTS, MAX_SUBJECT_BYTES, MESSAGE_CAPACITY, envelopeHash, messageContentSize, isEnvelopeSize, openMessage, pad, sealMessage, signReceipt, unpad, verifyReceipt,
  type Attachment, type InnerMessage, type MessageDraft, type MessageKind, type SealedMessage,
} from './envelope.js';
export { formatSafetyNumber, safetyNumber } from './safety.js';
export {
  KDF_DEFAULT, KDF_FAST, ensurePrivateDir, openKeyFile, readKeyFile, readPublicIdentity, writeKeyFile,
  type KdfStrength, type PublicIdentity,
} from './keyfile.js';
export {
  providerBindingBody, signProviderBinding, subscriberTag, subscriberTagKey, verifyProviderBinding, type ProviderBindingFields,
} from './provider.js';
