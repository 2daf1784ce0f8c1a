/**
 * Key agreement (PQXDH-shaped) and the INIT envelope (PROTOCOL.md §4, §5). No I/O: the responder's
 * prekeys come through a synchronous lookup the caller supplies.
 *
 *   off        size    field
 *   0          1       type = 0x21
 *   1          32      EK_A (initiator's ephemeral X25519 public key)
 *   33         4       signed prekey id (u32)
 *   37         4       PQ prekey id (u32)
 *   41         1       one-time prekey flag (0 | 1)
 *   42         4       one-time prekey id (u32; 0 when the flag is 0)
 *   46         1088    ML-KEM-768 ciphertext CT
 *   1134       2       Lb (u16) = |bundle_A| + 16
 *   1136       Lb      ChaCha20-Poly1305(KS, 0^12, bundle_A, bytes 0..1136)
 *   1136+Lb    68      encrypted header (first ratchet message, k = 0)
 *   1204+Lb    P+16    body, associated data IK_A ‖ IK_B ‖ bytes 0..1204+Lb
 *
 *   DH1 = DH(enck_A, SPK_B)  DH2 = DH(ek_A, EncK_B)  DH3 = DH(ek_A, SPK_B)  [DH4 = DH(ek_A, OPK_B)]
 *   (SS, CT) = ML-KEM-768.Encaps(PQPK_B, m)
 *   TH  = SHA256(IK_A ‖ IK_B ‖ EncK_A ‖ EncK_B ‖ SPK_B ‖ PQPK_B ‖ [OPK_B] ‖ EK_A ‖ CT)
 *   OKM = HKDF(0^32, FF32 ‖ DH1 ‖ DH2 ‖ DH3 ‖ [DH4] ‖ SS, "onionpost/v2/agreement" ‖ TH, 160)
 *       = RK0 ‖ HKA ‖ NHKB ‖ TK_AB ‖ TK_BA
 *   KS  = HKDF(0^32, FF32 ‖ DH2 ‖ DH3 ‖ [DH4] ‖ SS, "onionpost/v2/init-sender" ‖ IK_B ‖ EK_A ‖ SHA256(CT), 32)
 */
import { ByteReader, ByteWriter, bytesEqual } from '../bytes.js';
import { secureRandomBytes, type Identity, type IdentityKey, type RandomBytes } from '../crypto/index.js';
import {
  MAX_BUNDLE_BYTES, MIN_BUNDLE_BYTES, decodeBundle, verifyBundle,
  type BundleAnswer, type BundleV2, type OneTimePrekey, type PqPrekey, type SignedPrekey,
} from './bundle.js';
import { ENCRYPTED_HEADER_BYTES, ratchetOpen, ratchetSeal, type SessionState, kdfRoot } from './ratchet.js';
import { KIND_INIT, envelopeKind } from './envelope.js';
import { SessionError } from './errors.js';
import { checkTimes, decodeMessage, encodeMessage, type SessionMessage } from './message.js';
import {
  FF32, KEM_CIPHERTEXT_BYTES, KEY_BYTES, ZERO12, ZERO32, aeadOpen, aeadSeal, dh, hkdf, kemDecapsulate, kemEncapsulate,
  kemKeyPair, label, sha256, x25519KeyPair,
} from './primitives.js';

const AGREEMENT_INFO = label('onionpost/v2/agreement');
const SENDER_INFO = label('onionpost/v2/init-sender');
/** Offset of Lb, and of the sealed bundle. */
const LB_AT = 46 + KEM_CIPHERTEXT_BYTES;
const SB_AT = LB_AT + 2;
const MIN_SEALED_BUNDLE = MIN_BUNDLE_BYTES + 16;
const MAX_SEALED_BUNDLE = MAX_BUNDLE_BYTES + 16;
/** The shortest INIT that can carry a message: prefix, smallest sealed bundle, header, u32 length, body tag. */
export const MIN_INIT_BYTES = SB_AT + MIN_SEALED_BUNDLE + ENCRYPTED_HEADER_BYTES + 4 + 16;

interface AgreementKeys {
  id: Uint8Array;
  rootKey: Uint8Array;
  hka: Uint8Array;
  nhkb: Uint8Array;
  tagAB: Uint8Array;
  tagBA: Uint8Array;
}

function agreementKeys(
  dhs: { dh1: Uint8Array; dh2: Uint8Array; dh3: Uint8Array; dh4: Uint8Array | null; ss: Uint8Array },
  t: { ikA: Uint8Array; ikB: Uint8Array; encA: Uint8Array; encB: Uint8Array; spkB: Uint8Array; pqB: Uint8Array; opkB: Uint8Array | null; ekA: Uint8Array; ct: Uint8Array },
): AgreementKeys {
  const th = sha256(t.ikA, t.ikB, t.encA, t.encB, t.spkB, t.pqB, t.opkB ?? new Uint8Array(0), t.ekA, t.ct);
  const ikm = new ByteWriter().bytes(FF32).bytes(dhs.dh1).bytes(dhs.dh2).bytes(dhs.dh3).bytes(dhs.dh4 ?? new Uint8Array(0)).bytes(dhs.ss).finish();
  const okm = hkdf(ZERO32, ikm, new ByteWriter().bytes(AGREEMENT_INFO).bytes(th).finish(), 160);
  ikm.fill(0);
  return { id: th.slice(0, 16), rootKey: okm.slice(0, 32), hka: okm.slice(32, 64), nhkb: okm.slice(64, 96), tagAB: okm.slice(96, 128), tagBA: okm.slice(128, 160) };
}

function senderKey(dhs: { dh2: Uint8Array; dh3: Uint8Array; dh4: Uint8Array | null; ss: Uint8Array }, ikB: Uint8Array, ekA: Uint8Array, ct: Uint8Array): Uint8Array {
  const ikm = new ByteWriter().bytes(FF32).bytes(dhs.dh2).bytes(dhs.dh3).bytes(dhs.dh4 ?? new Uint8Array(0)).bytes(dhs.ss).finish();
  const k = hkdf(ZERO32, ikm, new ByteWriter().bytes(SENDER_INFO).bytes(ikB).bytes(ekA).bytes(sha256(ct)).finish(), 32);
  ikm.fill(0);
  return k;
}

export interface InitiateInput {
  /** Our identity (its encryption secret makes DH1). */
  self: Identity;
  /** Our own signed bundle v2, embedded (encrypted) so the responder can verify who we are. */
  selfBundle: BundleV2;
  /** The responder's bundle answer, as fetched. Verified here. */
  peer: BundleAnswer;
  /** The identity we meant to reach (the onion we dialled or the pinned contact). */
  expectedPeer?: Uint8Array;
  /** The session's first message. */
  message: SessionMessage;
  now: number;
  maxClockSkewMs: number;
  random?: RandomBytes;
}

export interface Initiated {
  state: SessionState;
  envelope: Uint8Array;
  envelopeHash: Uint8Array;
  receiptKey: Uint8Array;
  /** The first message's tag counter: always 0. */
  k: number;
  /** The peer's one-time prekey id that was used, or null. */
  oneTimePrekeyId: number | null;
}

/** Runs the agreement as initiator and encrypts the first message as an INIT envelope. */
export function initiate(input: InitiateInput): Initiated {
  const random = input.random ?? secureRandomBytes;
  const { self, selfBundle, message } = input;
  const { bundle: peer, oneTimePrekey: opk } = input.peer;
  verifyBundle(peer, { now: input.now, maxClockSkewMs: input.maxClockSkewMs, expectedIdentity: input.expectedPeer });
  if (!bytesEqual(selfBundle.identityKey, self.identityKey) || !bytesEqual(selfBundle.encryptionKey, self.encryptionKey)) {
    throw new SessionError('BAD_BUNDLE', 'our own bundle does not publish our current identity and encryption key');
  }
  verifyBundle(selfBundle, { now: input.now, maxClockSkewMs: input.maxClockSkewMs });

  const ek = x25519KeyPair(random(KEY_BYTES));
  const m = random(32);
  const { sharedSecret: ss, cipherText: ct } = kemEncapsulate(peer.pqPrekey, m);
  m.fill(0);
  const dh1 = dh(self.encryptionSecret, peer.signedPrekey, 'BAD_BUNDLE', "the peer's signed prekey");
  const dh2 = dh(ek.secret, peer.encryptionKey, 'BAD_BUNDLE', "the peer's encryption key");
  const dh3 = dh(ek.secret, peer.signedPrekey, 'BAD_BUNDLE', "the peer's signed prekey");
  const dh4 = opk ? dh(ek.secret, opk.public, 'BAD_BUNDLE', "the peer's one-time prekey") : null;
  const keys = agreementKeys({ dh1, dh2, dh3, dh4, ss }, {
    ikA: self.identityKey, ikB: peer.identityKey, encA: self.encryptionKey, encB: peer.encryptionKey,
    spkB: peer.signedPrekey, pqB: peer.pqPrekey, opkB: opk?.public ?? null, ekA: ek.public, ct,
  });
  const ks = senderKey({ dh2, dh3, dh4, ss }, peer.identityKey, ek.public, ct);
  for (const b of [dh1, dh2, dh3, dh4, ss]) b?.fill(0);

  const fixed = new ByteWriter()
    .u8(KIND_INIT).bytes(ek.public).u32(peer.signedPrekeyId).u32(peer.pqPrekeyId)
    .u8(opk ? 1 : 0).u32(opk ? opk.id : 0).bytes(ct).u16(selfBundle.bytes.length + 16)
    .finish();
  const sealedBundle = aeadSeal(ks, ZERO12, selfBundle.bytes, fixed);
  ks.fill(0);
  const prefix = new ByteWriter().bytes(fixed).bytes(sealedBundle).finish();

  // Alice's side of Signal's RatchetInitAliceHE, with B's signed prekey as B's first ratchet key.
  const dhSelf = x25519KeyPair(random(KEY_BYTES));
  const first = kdfRoot(keys.rootKey, dh(dhSelf.secret, peer.signedPrekey, 'BAD_BUNDLE', "the peer's signed prekey"));
  const state: SessionState = {
    role: 'initiator', id: keys.id, initiatorIdentity: self.identityKey, responderIdentity: peer.identityKey,
    rootKey: first.rootKey, dhSelf, dhRemote: Uint8Array.from(peer.signedPrekey),
    sendChain: first.chainKey, recvChain: null, ns: 0, nr: 0, pn: 0,
    headerKeySend: keys.hka, headerKeyRecv: null, nextHeaderKeySend: first.nextHeaderKey, nextHeaderKeyRecv: keys.nhkb,
    sendCounter: 0, recvHighest: -1, sendTagKey: keys.tagAB, recvTagKey: keys.tagBA,
  };
  const sealed = ratchetSeal(state, () => prefix, encodeMessage(message), random);
  return { state: sealed.state, envelope: sealed.envelope, envelopeHash: sha256(sealed.envelope), receiptKey: sealed.receiptKey, k: sealed.k, oneTimePrekeyId: opk ? opk.id : null };
}

/** The responder's prekeys, by id: undefined when no longer held. Synchronous (a store read). */
export interface PrekeyLookup {
  signedPrekey(id: number): SignedPrekey | undefined;
  pqPrekey(id: number): PqPrekey | undefined;
  oneTimePrekey(id: number): OneTimePrekey | undefined;
}

/** The prekey ids an INIT names (cheap: no cryptography). */
export interface InitPrekeyIds {
  signedPrekeyId: number;
  pqPrekeyId: number;
  oneTimePrekeyId: number | null;
}

/** Parses and checks the fixed part of an INIT (PROTOCOL.md §5, step 1). */
export function initPrekeyIds(envelope: Uint8Array): InitPrekeyIds & { sealedBundleLength: number } {
  if (envelopeKind(envelope) !== 'init') throw new SessionError('BAD_ENVELOPE', 'not an INIT envelope');
  if (envelope.length < MIN_INIT_BYTES) throw new SessionError('BAD_ENVELOPE', `INIT of ${envelope.length} bytes is shorter than the smallest possible (${MIN_INIT_BYTES})`);
  const r = new ByteReader(envelope, (what) => new SessionError('BAD_INIT', `bad INIT: ${what}`));
  r.bytes(1 + 32);
  const signedPrekeyId = r.u32();
  const pqPrekeyId = r.u32();
  const flag = r.u8();
  const opkId = r.u32();
  if (flag > 1) throw new SessionError('BAD_INIT', `bad INIT: one-time prekey flag ${flag}`);
  if (flag === 0 && opkId !== 0) throw new SessionError('BAD_INIT', 'bad INIT: a one-time prekey id without its flag');
  r.bytes(KEM_CIPHERTEXT_BYTES);
  const lb = r.u16();
  if (lb < MIN_SEALED_BUNDLE || lb > MAX_SEALED_BUNDLE || SB_AT + lb + ENCRYPTED_HEADER_BYTES + 4 + 16 > envelope.length) {
    throw new SessionError('BAD_INIT', `bad INIT: sealed bundle length ${lb}`);
  }
  return { signedPrekeyId, pqPrekeyId, oneTimePrekeyId: flag ? opkId : null, sealedBundleLength: lb };
}

export interface RespondInput {
  self: Identity;
  prekeys: PrekeyLookup;
  envelope: Uint8Array;
  now: number;
  maxClockSkewMs: number;
  maxTtlMs: number;
  random?: RandomBytes;
}

export interface Responded {
  state: SessionState;
  message: SessionMessage;
  envelopeHash: Uint8Array;
  receiptKey: Uint8Array;
  /** The initiator's verified bundle: its identity, encryption key and mailboxes. */
  peer: BundleV2;
  /** Which of our prekeys it used; delete the one-time prekey in the commit's transaction. */
  prekeys: InitPrekeyIds;
  /** The first message's tag counter: always 0. */
  k: number;
}

/** Accepts an INIT as responder: checks, cheapest first, each failure a typed SessionError. */
export function respond(input: RespondInput): Responded {
  const { self, envelope } = input;
  const random = input.random ?? secureRandomBytes;
  const ids = initPrekeyIds(envelope);
  const spk = input.prekeys.signedPrekey(ids.signedPrekeyId);
  const pq = input.prekeys.pqPrekey(ids.pqPrekeyId);
  const opk = ids.oneTimePrekeyId === null ? null : input.prekeys.oneTimePrekey(ids.oneTimePrekeyId);
  if (!spk) throw new SessionError('PREKEY_UNKNOWN', `signed prekey ${ids.signedPrekeyId} is not (or no longer) ours`);
  if (!pq) throw new SessionError('PREKEY_UNKNOWN', `PQ prekey ${ids.pqPrekeyId} is not (or no longer) ours`);
  if (opk === undefined) throw new SessionError('PREKEY_UNKNOWN', `one-time prekey ${ids.oneTimePrekeyId} is not (or no longer) ours`);

  const ekA = envelope.subarray(1, 33);
  const ct = envelope.subarray(46, 46 + KEM_CIPHERTEXT_BYTES);
  const dh2 = dh(self.encryptionSecret, ekA, 'BAD_INIT', 'ephemeral key');
  const dh3 = dh(spk.secret, ekA, 'BAD_INIT', 'ephemeral key');
  const dh4 = opk ? dh(opk.secret, ekA, 'BAD_INIT', 'ephemeral key') : null;
  const ss = kemDecapsulate(ct, pq.secretKey ?? kemKeyPair(pq.seed).secretKey);
  const ks = senderKey({ dh2, dh3, dh4, ss }, self.identityKey, ekA, ct);
  const headerAt = SB_AT + ids.sealedBundleLength;
  let bundleBytes: Uint8Array;
  try {
    bundleBytes = aeadOpen(ks, ZERO12, envelope.subarray(SB_AT, headerAt), envelope.subarray(0, SB_AT), 'sealed sender bundle');
  } finally {
    ks.fill(0);
  }
  const peer = decodeBundle(bundleBytes);
  verifyBundle(peer, { now: input.now, maxClockSkewMs: input.maxClockSkewMs });
  const dh1 = dh(spk.secret, peer.encryptionKey, 'BAD_INIT', "the initiator's encryption key");
  const keys = agreementKeys({ dh1, dh2, dh3, dh4, ss }, {
    ikA: peer.identityKey, ikB: self.identityKey, encA: peer.encryptionKey, encB: self.encryptionKey,
    spkB: spk.public, pqB: pq.public, opkB: opk?.public ?? null, ekA, ct,
  });
  for (const b of [dh1, dh2, dh3, dh4, ss]) b?.fill(0);

  // Bob's side of RatchetInitBobHE: his signed prekey is his first ratchet key pair.
  const state: SessionState = {
    role: 'responder', id: keys.id, initiatorIdentity: peer.identityKey, responderIdentity: self.identityKey as IdentityKey,
    rootKey: keys.rootKey, dhSelf: { secret: Uint8Array.from(spk.secret), public: Uint8Array.from(spk.public) }, dhRemote: null,
    sendChain: null, recvChain: null, ns: 0, nr: 0, pn: 0,
    headerKeySend: null, headerKeyRecv: null, nextHeaderKeySend: keys.nhkb, nextHeaderKeyRecv: keys.hka,
    sendCounter: 0, recvHighest: -1, sendTagKey: keys.tagBA, recvTagKey: keys.tagAB,
  };
  const opened = ratchetOpen(state, envelope, headerAt, {
    k: 0, skipped: null, skippedExpiresAt: input.now + input.maxTtlMs + input.maxClockSkewMs, random,
  });
  const message = decodeMessage(opened.inner);
  checkTimes(message, input);
  return {
    state: opened.state, message, envelopeHash: sha256(envelope), receiptKey: opened.receiptKey, peer,
    prekeys: { signedPrekeyId: ids.signedPrekeyId, pqPrekeyId: ids.pqPrekeyId, oneTimePrekeyId: ids.oneTimePrekeyId }, k: 0,
  };
}
