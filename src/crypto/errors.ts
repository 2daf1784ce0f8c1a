import { OnionpostError } from '../errors.js';

/** Every way a crypto operation refuses its input. Stable codes; see each thrower for meaning. */
export type CryptoErrorCode =
  | 'NOT_READY' // sodium not initialised: call `await cryptoReady()` first
  | 'BAD_LENGTH' // a key, seed, id or signature of the wrong size
  | 'BAD_ONION_ADDRESS' // not a v3 onion address (length, alphabet, version or checksum)
  | 'BAD_BUNDLE' // a key bundle that does not parse
  | 'BUNDLE_SIGNATURE' // a bundle whose signature does not verify
  | 'BUNDLE_EXPIRED' // a bundle outside its validity window
  | 'WRONG_PASSPHRASE' // the key file did not decrypt
  | 'KEYFILE_CORRUPT' // the key file does not parse
  | 'KEYFILE_MISSING' // no key file where one was expected
  | 'KEYFILE_EXISTS' // refusing to overwrite an identity
  | 'KEYFILE_PERMISSIONS' // the key file or its directory is readable by others
  | 'ENVELOPE_SIZE' // a sealed envelope whose length is not a padding bucket plus the seal overhead
  | 'DECRYPT_FAILED' // not sealed to our key, or tampered with
  | 'BAD_PADDING' // padding length or filler bytes wrong
  | 'BAD_MESSAGE' // the inner message does not parse
  | 'UNSUPPORTED_VERSION' // an inner message or bundle version we do not speak
  | 'WRONG_RECIPIENT' // sealed to our key but addressed to another identity
  | 'BAD_SIGNATURE' // the sender's signature does not verify
  | 'CLOCK_SKEW' // created too far in the future, or expiry before creation
  | 'EXPIRED' // past its expiry
  | 'TOO_LARGE' // a message whose encoding exceeds the largest padding bucket
  | 'BAD_RECEIPT' // a receipt signature that does not verify
  | 'BAD_ROTATION' // a rotation statement that does not verify
  | 'BAD_RECORD'; // a registry record whose signature or derived onion does not match

export class CryptoError extends OnionpostError<CryptoErrorCode> {}
