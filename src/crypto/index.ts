/**
 * crypto/: pure functions over bytes. Identity and encryption keys, the onion address, rotation
 * statements and registry-record signatures, and the passphrase-encrypted key file (the only I/O
 * here). The key bundle, envelopes and receipts of protocol 2 are src/session/'s. Call
 * `await cryptoReady()` once first.
 */
export { CryptoError, type CryptoErrorCode } from './errors.js';
export { cryptoReady, secureRandomBytes, wipe, type RandomBytes } from './sodium.js';
export {
  expandedSecretKey, generateIdentity, identityFromSecrets, identityKeyToX25519, identitySecretToX25519, isOnionAddress, onionAddress, onionKeyBlob, onionOfSeed,
  parseOnionAddress, sha256, signDomain, verifyDomain, withNewEncryptionKey,
  type EncryptionKey, type Identity, type IdentityKey, type OnionAddress,
} from './keys.js';
export {
  MAX_MAILBOXES, decodeRotation, encodeRotation, registryRecordBody, signRegistryRecord, signRotation, verifyRegistryRecord, verifyRotation,
  type RegistryRecordFields, type RotationStatement,
} from './bundle.js';
export { formatSafetyNumber, safetyNumber } from './safety.js';
export {
  KDF_DEFAULT, KDF_FAST, ensurePrivateDir, openKeyFile, readKeyFile, readPublicIdentity, writeKeyFile,
  type KdfStrength, type PublicIdentity,
} from './keyfile.js';
export {
  contactQueueReadCap, providerBindingBody, publicQueueId, publicQueueReadCap, signProviderBinding, subscriberTag, subscriberTagKey, verifyProviderBinding,
  type ProviderBindingFields,
} from './provider.js';
