/**
 * Argon2id (libsodium's crypto_pwhash) in a worker thread of its own, for `openKeyFile`. libsodium
 * runs in WebAssembly, whose memory grows to the KDF's memlimit (64 MiB by default) and never
 * shrinks: derived in the node's own thread, that memory would stay resident for the node's whole
 * life. A worker's memory goes when the worker exits.
 *
 *   workerData  { passphrase: string, salt: Uint8Array, opslimit: number, memlimit: number }
 *   message     the 32-byte key (Uint8Array), or { error: string }
 */
import { parentPort, workerData } from 'node:worker_threads';
import _sodium from 'libsodium-wrappers-sumo';

const { passphrase, salt, opslimit, memlimit } = workerData as { passphrase: string; salt: Uint8Array; opslimit: number; memlimit: number };
try {
  await _sodium.ready;
  const s = _sodium;
  const key = s.crypto_pwhash(s.crypto_secretbox_KEYBYTES, passphrase, salt, opslimit, memlimit, s.crypto_pwhash_ALG_ARGON2ID13);
  parentPort!.postMessage(key, [key.buffer as ArrayBuffer]);
} catch (err) {
  parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
