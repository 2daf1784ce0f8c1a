/**
 * The identity's secrets at rest: a JSON file, mode 0600 in a 0700 directory, whose secret part is
 * encrypted with a key derived from the user's passphrase (Argon2id `crypto_pwhash`, then
 * `crypto_secretbox`). The public keys sit beside it in clear so `onionpost address` needs no
 * passphrase; they are checked against the decrypted secrets on every unlock.
 *
 *   {
 *     "format": "onionpost-keyfile", "version": 1,
 *     "onion": "<56>.onion", "identityKey": "<hex>", "encryptionKey": "<hex>",
 *     "kdf": { "alg": "argon2id13", "opslimit": 2, "memlimit": 67108864, "salt": "<base64 16>" },
 *     "nonce": "<base64 24>", "ciphertext": "<base64: secretbox(seed ‖ x25519 secret)>"
 *   }
 */
import { Worker } from 'node:worker_threads';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bytesEqual, fromHex, toHex } from '../bytes.js';
import { CryptoError } from './errors.js';
import { identityFromSecrets, type EncryptionKey, type Identity, type IdentityKey, type OnionAddress } from './keys.js';
import { secureRandomBytes, sodium, type RandomBytes } from './sodium.js';

export interface KdfStrength {
  opslimit: number;
  memlimit: number;
}

/** libsodium's INTERACTIVE limits: ~0.1–0.5 s and 64 MiB here. Tests pass `KDF_FAST`. */
export const KDF_DEFAULT: KdfStrength = { opslimit: 2, memlimit: 64 * 1024 * 1024 };
/** The minimum libsodium allows; for tests only. */
export const KDF_FAST: KdfStrength = { opslimit: 1, memlimit: 8192 };

export interface PublicIdentity {
  onion: OnionAddress;
  identityKey: IdentityKey;
  encryptionKey: EncryptionKey;
}

interface KeyFileJson {
  format: 'onionpost-keyfile';
  version: 1;
  onion: string;
  identityKey: string;
  encryptionKey: string;
  kdf: { alg: 'argon2id13'; opslimit: number; memlimit: number; salt: string };
  nonce: string;
  ciphertext: string;
}

/** Creates `dir` (and parents) with mode 0700, or tightens an existing one to 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

function deriveKey(passphrase: string, salt: Uint8Array, k: KdfStrength): Uint8Array {
  const s = sodium();
  return s.crypto_pwhash(s.crypto_secretbox_KEYBYTES, passphrase, salt, k.opslimit, k.memlimit, s.crypto_pwhash_ALG_ARGON2ID13);
}

/** Writes the identity atomically (temp file + rename). Refuses to overwrite unless `overwrite`. */
export function writeKeyFile(
  path: string,
  id: Identity,
  passphrase: string,
  opts: { strength?: KdfStrength; random?: RandomBytes; overwrite?: boolean } = {},
): void {
  if (!opts.overwrite && existsSync(path)) throw new CryptoError('KEYFILE_EXISTS', `an identity already exists at ${path}`);
  ensurePrivateDir(dirname(path));
  const s = sodium();
  const random = opts.random ?? secureRandomBytes;
  const strength = opts.strength ?? KDF_DEFAULT;
  const salt = random(s.crypto_pwhash_SALTBYTES);
  const nonce = random(s.crypto_secretbox_NONCEBYTES);
  const key = deriveKey(passphrase, salt, strength);
  const secrets = new Uint8Array(64);
  secrets.set(id.seed, 0);
  secrets.set(id.encryptionSecret, 32);
  const ciphertext = s.crypto_secretbox_easy(secrets, nonce, key);
  s.memzero(secrets);
  s.memzero(key);
  const json: KeyFileJson = {
    format: 'onionpost-keyfile',
    version: 1,
    onion: id.onion,
    identityKey: toHex(id.identityKey),
    encryptionKey: toHex(id.encryptionKey),
    kdf: { alg: 'argon2id13', ...strength, salt: Buffer.from(salt).toString('base64') },
    nonce: Buffer.from(nonce).toString('base64'),
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  };
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(json, null, 2) + '\n', { mode: 0o600, flag: 'w' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function load(path: string): KeyFileJson {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CryptoError('KEYFILE_MISSING', `no identity at ${path} (run \`onionpost init\`)`, { cause: err });
    throw err;
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new CryptoError('KEYFILE_PERMISSIONS', `key file ${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  let json: KeyFileJson;
  try {
    json = JSON.parse(text) as KeyFileJson;
  } catch (err) {
    throw new CryptoError('KEYFILE_CORRUPT', `key file ${path} is not valid JSON`, { cause: err });
  }
  if (json?.format !== 'onionpost-keyfile' || json.version !== 1 || json.kdf?.alg !== 'argon2id13') {
    throw new CryptoError('KEYFILE_CORRUPT', `key file ${path} has an unknown format`);
  }
  return json;
}

/** The public half, readable without the passphrase. */
export function readPublicIdentity(path: string): PublicIdentity {
  const j = load(path);
  try {
    return { onion: j.onion as OnionAddress, identityKey: fromHex(j.identityKey) as IdentityKey, encryptionKey: fromHex(j.encryptionKey) as EncryptionKey };
  } catch (err) {
    throw new CryptoError('KEYFILE_CORRUPT', `key file ${path} has malformed public keys`, { cause: err });
  }
}

/** Decrypts the identity. WRONG_PASSPHRASE when the passphrase does not open it. */
export function readKeyFile(path: string, passphrase: string): Identity {
  const j = load(path);
  return openWithKey(j, deriveKey(passphrase, b64(j.kdf.salt), { opslimit: j.kdf.opslimit, memlimit: j.kdf.memlimit }));
}

/**
 * readKeyFile for a long-running process (`onionpost start`): the same, but the key is derived in a
 * worker thread (kdf-worker.ts), so that the KDF's 64 MiB of WebAssembly memory is given back when
 * it is done instead of staying resident for the life of the node.
 */
export async function openKeyFile(path: string, passphrase: string): Promise<Identity> {
  const j = load(path);
  const key = await new Promise<Uint8Array>((resolve, reject) => {
    const worker = new Worker(new URL('./kdf-worker.js', import.meta.url), {
      workerData: { passphrase, salt: b64(j.kdf.salt), opslimit: j.kdf.opslimit, memlimit: j.kdf.memlimit },
    });
    worker.once('message', (m: Uint8Array | { error: string }) => {
      void worker.terminate();
      if (m instanceof Uint8Array) resolve(m);
      else reject(new CryptoError('KEYFILE_CORRUPT', `cannot derive the key file's key: ${m.error}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`key derivation worker exited (${code}) without a key`)));
  });
  return openWithKey(j, key);
}

const b64 = (v: string) => new Uint8Array(Buffer.from(v, 'base64'));

/** Opens the secrets with the derived key (which it zeroes) and checks them against the public keys. */
function openWithKey(j: KeyFileJson, key: Uint8Array): Identity {
  const s = sodium();
  let secrets: Uint8Array;
  try {
    secrets = s.crypto_secretbox_open_easy(b64(j.ciphertext), b64(j.nonce), key);
  } catch (err) {
    throw new CryptoError('WRONG_PASSPHRASE', 'wrong passphrase for this identity', { cause: err });
  } finally {
    s.memzero(key);
  }
  if (secrets.length !== 64) throw new CryptoError('KEYFILE_CORRUPT', 'key file secrets have the wrong length');
  const id = identityFromSecrets(secrets.subarray(0, 32), secrets.subarray(32, 64));
  s.memzero(secrets);
  if (!bytesEqual(id.identityKey, fromHex(j.identityKey)) || !bytesEqual(id.encryptionKey, fromHex(j.encryptionKey))) {
    throw new CryptoError('KEYFILE_CORRUPT', 'key file public keys do not match its secrets');
  }
  return id;
}
