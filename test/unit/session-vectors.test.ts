/**
 * src/session against test/vectors/session.json: known answers computed by an independent Python
 * implementation of PROTOCOL.md (test/vectors/session_vectors.py, on the `cryptography` package),
 * not by this code. Every valid vector is reproduced byte for byte by replaying its recorded random
 * draws; every invalid one is refused with the SessionError code the specification gives, and a
 * refused receive leaves the receiver's state as it was.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cryptoReady, identityFromSecrets, parseOnionAddress, type Identity, type OnionAddress, type RandomBytes } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/bytes.js';
import {
  decodeBundle, decodeBundleAnswer, decodeMessage, decrypt, encodeBundleAnswer, encodeMessage, encodeState, encrypt, initiate,
  parseQueueHandout, parseReadReceipt, queueHandoutBody, readReceiptBody, receiptMac, respond, seenKey, signBundle, tagFor, verifyBundle, verifyReceiptMac,
  type BundleV2, type PrekeyLookup, type SessionMessage, type SessionState, type SkippedKey,
} from '../../src/session/index.js';
import { kdfChain, kdfRoot, messageKeys } from '../../src/session/ratchet.js';
import { dh, kemDecapsulate, kemEncapsulate, kemKeyPair, x25519Public } from '../../src/session/primitives.js';
import { pad, paddedLength } from '../../src/session/message.js';
import { sessionCodeOf } from '../fixtures/sessions.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { FRAME_TYPE_IDS, WIRE_VERSION, decodeFrame, encodeFrame } from '../../src/protocol/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Vectors live in the source tree (test/vectors), two levels above dist/test/unit.
const V = JSON.parse(readFileSync(join(here, '../../../test/vectors/session.json'), 'utf8')) as Vectors;

interface PartyV {
  identitySeed: string; identityKey: string; onion: string; encryptionSecret: string; encryptionKey: string;
  spkId: number; spkSecret: string; spk: string; pqpkId: number; pqpkSeed: string; pqpk: string;
  opks: { id: number; secret: string; public: string }[];
  mailboxes: string[]; createdAt: number; expiresAt: number; bundleBody: string; bundleSignature: string; bundle: string;
}
interface InnerV {
  version: number; kind: number; id: string; createdAt: number; expiresAt: number; threadId: string; inReplyTo: string;
  subject: string; body: string; attachments: { name: string; mediaType: string; data: string }[];
}
interface StepV {
  actor: 'A' | 'B'; op: 'init' | 'send' | 'receive-init' | 'receive'; random: string[]; inner: InnerV; innerBytes: string; k: number;
  header: string; headerKey: string; messageKey: string; receiptKey: string;
  // send and init
  headerNonce?: string; encryptedHeader?: string; bodyKey?: string; tag?: string | null; padded?: string | null;
  paddedSha256?: string; envelope?: string; envelopeSha256?: string; receiptMac?: string; initSeenKey?: string;
  // receive
  from?: 'A' | 'B'; usedSkippedKey?: boolean; dhStep?: boolean;
  step?: { dhRecv: string; rkAfterRecv: string; ckr: string; nhkr: string; newRatchetSecret: string; newRatchetPublic: string; dhSend: string; rk: string; cks: string; nhks: string } | null;
  storedSkipped?: { k: number; n: number; hk: string; mk: string }[];
}
interface AgreementV {
  ekA: string; EKA: string; m: string; dh1: string; dh2: string; dh3: string; dh4: string | null; ct: string; ss: string; th: string;
  rk0: string; hka: string; nhkb: string; tkAB: string; tkBA: string; ks: string; ratchetSecretA: string; ratchetPublicA: string;
  dh0: string; rkA: string; cksA: string; nhksA: string; bundleA: string; sealedBundle: string;
}
interface SessionV { name: string; initiator: 'alice'; responder: 'bob'; bundleAnswer: number | null; agreement: AgreementV; steps: StepV[] }
interface Mutation { of: string; flip?: [number, number]; truncate?: number; append?: string }
interface ReceiverStateV { session: number; actor: 'A' | 'B'; afterStep: number }
interface ControlBase { name: string; kind: 3 | 4; inner: InnerV; innerBytes: string }
interface ControlV extends ControlBase {
  bodyLength: number;
  ids?: string[];
  queues?: { provider: string; queue: string; writeCapability: string; providerIdentityKey: string }[];
}
interface Vectors {
  now: number;
  limits: { buckets: number[]; maxSkip: number; maxClockSkew: number; maxTtl: number };
  parties: { alice: PartyV; bob: PartyV };
  mlkem768: { seed: string; ek: string; m: string; ct: string; ss: string }[];
  bundleAnswers: { name: string; owner: 'alice' | 'bob'; answer: string; opkId: number | null; opk: string | null }[];
  sessions: SessionV[];
  sessionEdges: { name: string; receiverState: ReceiverStateV; envelope: string; k: number; random: string[]; innerBytes: string; messageKey: string; receiptKey: string; storedSkipped: number; firstSkipped: { k: number; mk: string }; lastSkipped: { k: number; mk: string } }[];
  padding: { kind: string; prefixLength: number; innerLength: number; bucket?: number; paddedLength?: number; paddedSha256?: string; error?: string }[];
  invalidSession: { name: string; bytes?: string; mutation?: Mutation; k: number; expect: string; receiverState: ReceiverStateV }[];
  invalidInit: { name: string; bytes?: string; mutation?: Mutation; now: number; expect: string }[];
  invalidInitiate: { name: string; answer: string; inner: InnerV; random: string[]; now: number; expect: string }[];
  invalidBundle: { name: string; bytes?: string; mutation?: Mutation; now: number; expect: string; kind: 'bundle' | 'answer' }[];
  validBundleEdges: { name: string; owner?: 'bob'; bytes?: string; now: number }[];
  tags: { tagKey: string; k: number; tag: string }[];
  receipts: { receiptKey: string; messageId: string; envelope: string; envelopeSha256: string; mac: string }[];
  receiptFrame: { body: string; pairs: { messageId: string; mac: string }[] };
  controlMessages: { valid: ControlV[]; invalid: (ControlBase & { expect: string; note?: string })[] };
  kdf: { kdfRk: { rk: string; dhOut: string; rkOut: string; ck: string; nhk: string }; kdfCk: { ck: string; ckOut: string; mk: string }; msgKeys: { mk: string; ak: string; rck: string } };
}

const NOW = V.now;
const SKEW = V.limits.maxClockSkew;
const TTL = V.limits.maxTtl;
const h = fromHex;
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
const eq = (actual: Uint8Array | null | undefined, expectedHex: string | null | undefined, what: string): void => {
  assert.equal(actual == null ? null : toHex(actual), expectedHex ?? null, what);
};

/** PROTOCOL.md §13: the operation draws exactly these bytes, in this order, and no others. */
function replay(draws: string[], what: string): RandomBytes & { done(): void } {
  let i = 0;
  const random = ((n: number) => {
    assert.ok(i < draws.length, `${what}: draw ${i} of ${n} bytes, but the vector records only ${draws.length}`);
    const b = h(draws[i]!);
    assert.equal(b.length, n, `${what}: draw ${i} is ${b.length} bytes in the vector, ${n} asked`);
    i++;
    return b;
  }) as RandomBytes & { done(): void };
  random.done = () => assert.equal(i, draws.length, `${what}: ${draws.length - i} recorded draws not used`);
  return random;
}

const KINDS = { 1: 'mail', 2: 'chat', 3: 'read', 4: 'queues' } as const;
function message(m: InnerV): SessionMessage {
  const zero = (x: string) => (/^0+$/.test(x) ? null : h(x));
  return {
    kind: KINDS[m.kind as 1 | 2 | 3 | 4], id: h(m.id), createdAt: m.createdAt, expiresAt: m.expiresAt,
    threadId: zero(m.threadId), inReplyTo: zero(m.inReplyTo), subject: m.subject, body: m.body,
    attachments: m.attachments.map((a) => ({ name: a.name, mediaType: a.mediaType, data: h(a.data) })),
  };
}

let alice: Identity;
let bob: Identity;
let aliceBundle: BundleV2;
let bobLookup: PrekeyLookup;

function partyBundle(p: PartyV, id: Identity): BundleV2 {
  return signBundle(id, {
    signedPrekey: { id: p.spkId, public: h(p.spk) }, pqPrekey: { id: p.pqpkId, public: h(p.pqpk) },
    now: p.createdAt, lifetimeMs: p.expiresAt - p.createdAt, mailboxes: p.mailboxes as OnionAddress[],
  });
}

before(async () => {
  await cryptoReady();
  alice = identityFromSecrets(h(V.parties.alice.identitySeed), h(V.parties.alice.encryptionSecret));
  bob = identityFromSecrets(h(V.parties.bob.identitySeed), h(V.parties.bob.encryptionSecret));
  aliceBundle = decodeBundle(h(V.parties.alice.bundle));
  const b = V.parties.bob;
  const spk = { id: b.spkId, secret: h(b.spkSecret), public: h(b.spk) };
  const pq = { id: b.pqpkId, seed: h(b.pqpkSeed), public: h(b.pqpk) };
  const opks = new Map(b.opks.map((o) => [o.id, { id: o.id, secret: h(o.secret), public: h(o.public) }]));
  bobLookup = {
    signedPrekey: (id) => (id === spk.id ? spk : undefined),
    pqPrekey: (id) => (id === pq.id ? pq : undefined),
    oneTimePrekey: (id) => opks.get(id),
  };
});

test('vectors: identities, onion addresses and bundle v2 (encoding, Ed25519 signature under "bundle/v2")', () => {
  for (const [name, id] of [['alice', alice], ['bob', bob]] as const) {
    const p = V.parties[name];
    eq(id.identityKey, p.identityKey, `${name} identity key`);
    eq(id.encryptionKey, p.encryptionKey, `${name} encryption key`);
    assert.equal(id.onion, p.onion, `${name} onion`);
    const bundle = partyBundle(p, id);
    eq(bundle.bytes, p.bundle, `${name} bundle`);
    eq(bundle.bytes.subarray(0, bundle.bytes.length - 64), p.bundleBody, `${name} bundle body`);
    eq(bundle.signature, p.bundleSignature, `${name} bundle signature`);
    const decoded = decodeBundle(h(p.bundle));
    verifyBundle(decoded, { now: NOW, maxClockSkewMs: SKEW, expectedIdentity: h(p.identityKey) });
    assert.deepEqual(decoded.mailboxes, p.mailboxes);
    assert.equal(decoded.signedPrekeyId, p.spkId);
    assert.equal(decoded.pqPrekeyId, p.pqpkId);
    eq(kemKeyPair(h(p.pqpkSeed)).publicKey, p.pqpk, `${name} PQ prekey from its seed`);
    for (const o of p.opks) eq(x25519Public(h(o.secret)), o.public, `${name} one-time prekey ${o.id}`);
    eq(x25519Public(h(p.spkSecret)), p.spk, `${name} signed prekey`);
  }
  for (const a of V.bundleAnswers) {
    const decoded = decodeBundleAnswer(h(a.answer));
    verifyBundle(decoded.bundle, { now: NOW, maxClockSkewMs: SKEW });
    eq(decoded.bundle.bytes, V.parties[a.owner].bundle, `${a.name}: bundle`);
    assert.equal(decoded.oneTimePrekey?.id ?? null, a.opkId, `${a.name}: OPK id`);
    eq(decoded.oneTimePrekey?.public, a.opk, `${a.name}: OPK`);
    eq(encodeBundleAnswer({ bundle: decoded.bundle, oneTimePrekey: decoded.oneTimePrekey }), a.answer, `${a.name}: re-encoded`);
  }
  for (const e of V.validBundleEdges) {
    const bytes = e.owner ? h(V.parties[e.owner].bundle) : h(e.bytes!);
    verifyBundle(decodeBundle(bytes), { now: e.now, maxClockSkewMs: SKEW });
  }
});

test('vectors: ML-KEM-768 keygen from the 64-byte seed, deterministic encapsulation, decapsulation', () => {
  for (const v of V.mlkem768) {
    const kp = kemKeyPair(h(v.seed));
    eq(kp.publicKey, v.ek, 'encapsulation key');
    const { sharedSecret, cipherText } = kemEncapsulate(kp.publicKey, h(v.m));
    eq(cipherText, v.ct, 'ciphertext');
    eq(sharedSecret, v.ss, 'shared secret');
    eq(kemDecapsulate(h(v.ct), kp.secretKey), v.ss, 'decapsulated');
  }
});

test('vectors: ratchet KDFs, tags and receipt MACs on their own', () => {
  const { kdfRk, kdfCk, msgKeys } = V.kdf;
  const root = kdfRoot(h(kdfRk.rk), h(kdfRk.dhOut));
  eq(root.rootKey, kdfRk.rkOut, 'KDF_RK root key');
  eq(root.chainKey, kdfRk.ck, 'KDF_RK chain key');
  eq(root.nextHeaderKey, kdfRk.nhk, 'KDF_RK next header key');
  const chain = kdfChain(h(kdfCk.ck));
  eq(chain.chainKey, kdfCk.ckOut, 'KDF_CK chain key');
  eq(chain.messageKey, kdfCk.mk, 'KDF_CK message key');
  const keys = messageKeys(h(msgKeys.mk));
  eq(keys.aeadKey, msgKeys.ak, 'MSG_KEYS body key');
  eq(keys.receiptKey, msgKeys.rck, 'MSG_KEYS receipt key');
  for (const t of V.tags) eq(tagFor(h(t.tagKey), t.k), t.tag, `TAG(k = ${t.k})`);
  for (const r of V.receipts) {
    eq(sha256(h(r.envelope)), r.envelopeSha256, 'envelope hash');
    eq(receiptMac(h(r.receiptKey), h(r.messageId), h(r.envelopeSha256)), r.mac, 'receipt MAC');
    assert.ok(verifyReceiptMac(h(r.receiptKey), h(r.messageId), h(r.envelopeSha256), h(r.mac)));
  }
});

test('vectors: padding to the envelope buckets', () => {
  for (const p of V.padding) {
    const inner = new Uint8Array(p.innerLength).map((_, i) => (7 * i + 3) % 256);
    const what = `${p.kind} prefix ${p.prefixLength}, inner ${p.innerLength}`;
    if (p.error) {
      assert.equal(sessionCodeOf(() => paddedLength(p.prefixLength, p.innerLength)), p.error, what);
      continue;
    }
    const P = paddedLength(p.prefixLength, p.innerLength);
    assert.equal(P, p.paddedLength, what);
    assert.equal(p.prefixLength + P + 16, p.bucket, what);
    eq(sha256(pad(inner, P)), p.paddedSha256!, what);
  }
});

/** Both sides of one vector session, replayed step by step through the public API. */
class Replay {
  readonly state: { A: SessionState | null; B: SessionState | null } = { A: null, B: null };
  readonly skipped: { A: Map<number, SkippedKey>; B: Map<number, SkippedKey> } = { A: new Map(), B: new Map() };
  readonly envelopes = new Map<string, Uint8Array>();

  constructor(readonly s: SessionV) {}

  run(until = this.s.steps.length - 1): void {
    for (let i = 0; i <= until; i++) this.step(i);
  }

  step(i: number): void {
    const st = this.s.steps[i]!;
    const what = `${this.s.name}, step ${i} (${st.actor} ${st.op} k=${st.k})`;
    const random = replay(st.random, what);
    const msg = message(st.inner);
    eq(encodeMessage(msg), st.innerBytes, `${what}: inner message`);
    if (st.op === 'init') this.#init(st, msg, random, what);
    else if (st.op === 'send') this.#send(st, msg, random, what);
    else if (st.op === 'receive-init') this.#receiveInit(st, random, what);
    else this.#receive(st, random, what);
    random.done();
  }

  #checkSent(st: StepV, envelope: Uint8Array, receiptKey: Uint8Array, k: number, what: string): void {
    assert.equal(k, st.k, `${what}: k`);
    eq(envelope, st.envelope!, `${what}: envelope`);
    eq(receiptKey, st.receiptKey, `${what}: receipt key`);
    eq(messageKeys(h(st.messageKey)).receiptKey, st.receiptKey, `${what}: RCK from MK`);
    eq(messageKeys(h(st.messageKey)).aeadKey, st.bodyKey!, `${what}: AK from MK`);
    eq(receiptMac(receiptKey, h(st.inner.id), sha256(envelope)), st.receiptMac!, `${what}: receipt MAC`);
    this.envelopes.set(`${st.actor}:${st.k}`, envelope);
  }

  #init(st: StepV, msg: SessionMessage, random: RandomBytes, what: string): void {
    const a = this.s.agreement;
    const peer = this.s.bundleAnswer === null
      ? decodeBundleAnswer(encodeBundleAnswer({ bundle: h(V.parties.bob.bundle), oneTimePrekey: null }))
      : decodeBundleAnswer(h(V.bundleAnswers[this.s.bundleAnswer]!.answer));
    const r = initiate({ self: alice, selfBundle: aliceBundle, peer, message: msg, now: NOW, maxClockSkewMs: SKEW, random });
    this.#checkSent(st, r.envelope, r.receiptKey, r.k, what);
    eq(seenKey(r.envelope), st.initSeenKey!, `${what}: INIT seen key`);
    // the agreement's outputs, as they appear in A's state (§4, §6.2)
    eq(r.state.headerKeySend, a.hka, `${what}: HKA`);
    eq(r.state.nextHeaderKeyRecv, a.nhkb, `${what}: NHKB`);
    eq(r.state.sendTagKey, a.tkAB, `${what}: TK_AB`);
    eq(r.state.recvTagKey, a.tkBA, `${what}: TK_BA`);
    eq(r.state.rootKey, a.rkA, `${what}: RK after A's first KDF_RK`);
    eq(r.state.nextHeaderKeySend, a.nhksA, `${what}: A's NHKs`);
    eq(r.state.dhSelf.public, a.ratchetPublicA, `${what}: A's first ratchet key`);
    eq(r.state.sendChain, toHex(kdfChain(h(a.cksA)).chainKey), `${what}: CKs after the first message`);
    eq(kdfChain(h(a.cksA)).messageKey, st.messageKey, `${what}: MK of the first message`);
    eq(r.state.dhRemote, V.parties.bob.spk, `${what}: DHr = SPK_B`);
    // the parts of the agreement that are bytes of the INIT
    const env = r.envelope;
    eq(env.subarray(1, 33), a.EKA, `${what}: EK_A`);
    eq(env.subarray(46, 46 + 1088), a.ct, `${what}: CT`);
    const lb = (env[1134]! << 8) | env[1135]!;
    eq(env.subarray(1136, 1136 + lb), a.sealedBundle, `${what}: sealed bundle`);
    eq(env.subarray(1136 + lb, 1136 + lb + 68), st.encryptedHeader!, `${what}: encrypted header`);
    // each DH and the KEM, with the primitives the agreement uses
    const b = V.parties.bob;
    eq(dh(alice.encryptionSecret, h(b.spk), 'BAD_INIT', 'DH1'), a.dh1, 'DH1');
    eq(dh(h(a.ekA), h(b.encryptionKey), 'BAD_INIT', 'DH2'), a.dh2, 'DH2');
    eq(dh(h(a.ekA), h(b.spk), 'BAD_INIT', 'DH3'), a.dh3, 'DH3');
    if (a.dh4) eq(dh(h(a.ekA), peer.oneTimePrekey!.public, 'BAD_INIT', 'DH4'), a.dh4, 'DH4');
    else assert.equal(peer.oneTimePrekey, null);
    const kem = kemEncapsulate(h(b.pqpk), h(a.m));
    eq(kem.cipherText, a.ct, 'KEM ciphertext');
    eq(kem.sharedSecret, a.ss, 'KEM shared secret');
    eq(dh(h(a.ratchetSecretA), h(b.spk), 'BAD_INIT', 'DH0'), a.dh0, "A's first ratchet DH");
    this.state.A = r.state;
  }

  #send(st: StepV, msg: SessionMessage, random: RandomBytes, what: string): void {
    const s = this.state[st.actor]!;
    eq(s.headerKeySend, st.headerKey, `${what}: HKs`);
    eq(kdfChain(s.sendChain!).messageKey, st.messageKey, `${what}: MK`);
    const r = encrypt(s, msg, { random });
    this.#checkSent(st, r.envelope, r.receiptKey, r.k, what);
    eq(r.tag, st.tag!, `${what}: tag`);
    eq(r.envelope.subarray(1, 17), st.tag!, `${what}: tag in the envelope`);
    eq(r.envelope.subarray(17, 85), st.encryptedHeader!, `${what}: encrypted header`);
    eq(tagFor(s.sendTagKey, st.k), st.tag!, `${what}: TAG(TK_s, k)`);
    this.state[st.actor] = r.state;
  }

  #receiveInit(st: StepV, random: RandomBytes, what: string): void {
    const envelope = this.envelopes.get(`${st.from}:${st.k}`)!;
    const r = respond({ self: bob, prekeys: bobLookup, envelope, now: NOW, maxClockSkewMs: SKEW, maxTtlMs: TTL, random });
    eq(encodeMessage(r.message), st.innerBytes, `${what}: message`);
    eq(r.receiptKey, st.receiptKey, `${what}: receipt key`);
    eq(r.peer.bytes, this.s.agreement.bundleA, `${what}: Bundle_A`);
    eq(r.state.recvTagKey, this.s.agreement.tkAB, `${what}: TK_r`);
    eq(r.state.sendTagKey, this.s.agreement.tkBA, `${what}: TK_s`);
    this.#checkStep(st, r.state, what);
    this.state.B = r.state;
  }

  #checkStep(st: StepV, s: SessionState, what: string): void {
    if (!st.step) return;
    eq(s.dhSelf.public, st.step.newRatchetPublic, `${what}: new ratchet key`);
    eq(s.rootKey, st.step.rk, `${what}: RK after the step`);
    eq(s.sendChain, st.step.cks, `${what}: CKs after the step`);
    eq(s.nextHeaderKeySend, st.step.nhks, `${what}: NHKs after the step`);
    eq(s.nextHeaderKeyRecv, st.step.nhkr, `${what}: NHKr after the step`);
  }

  #receive(st: StepV, random: RandomBytes, what: string): void {
    const actor = st.actor;
    const envelope = this.envelopes.get(`${st.from}:${st.k}`)!;
    const r = decrypt(this.state[actor]!, envelope, {
      k: st.k, skipped: this.skipped[actor].get(st.k) ?? null, now: NOW, maxClockSkewMs: SKEW, maxTtlMs: TTL, random,
    });
    eq(encodeMessage(r.message), st.innerBytes, `${what}: message`);
    eq(r.receiptKey, st.receiptKey, `${what}: receipt key`);
    assert.equal(r.skippedUsed, st.usedSkippedKey ? st.k : null, `${what}: skipped key used`);
    assert.deepEqual(
      r.skippedAdded.map((x) => ({ k: x.k, n: x.n, hk: toHex(x.headerKey), mk: toHex(x.messageKey) })),
      st.storedSkipped, `${what}: skipped keys stored`,
    );
    for (const x of r.skippedAdded) eq(x.tag, toHex(tagFor(this.state[actor]!.recvTagKey, x.k)), `${what}: skipped key's tag`);
    if (!st.usedSkippedKey && !st.dhStep) eq(r.state.headerKeyRecv, st.headerKey, `${what}: HKr`);
    this.#checkStep(st, r.state, what);
    if (r.skippedUsed !== null) this.skipped[actor].delete(r.skippedUsed);
    for (const x of r.skippedAdded) this.skipped[actor].set(x.k, x);
    this.state[actor] = r.state;
  }
}

test('vectors: sessions replayed byte for byte (agreement, INIT, DH steps both ways, out of order, a late message across a step)', () => {
  for (const s of V.sessions) new Replay(s).run();
});

function mutated(m: Mutation): Uint8Array {
  let base: Uint8Array;
  const session = /^session(\d+):([AB]):(\d+)$/.exec(m.of);
  if (session) {
    const s = V.sessions[Number(session[1])]!;
    const st = s.steps.find((x) => x.actor === session[2] && (x.op === 'send' || x.op === 'init') && x.k === Number(session[3]))!;
    base = h(st.envelope!);
  } else if (m.of === 'bundle:bob') {
    base = h(V.parties.bob.bundle);
  } else if (m.of.startsWith('answer:')) {
    base = h(V.bundleAnswers[Number(m.of.slice(7))]!.answer);
  } else {
    throw new Error(`unknown base ${m.of}`);
  }
  if (m.flip) {
    const out = Uint8Array.from(base);
    out[m.flip[0]]! ^= m.flip[1];
    return out;
  }
  if (m.truncate !== undefined) return base.slice(0, m.truncate);
  if (m.append !== undefined) return new Uint8Array([...base, ...h(m.append)]);
  throw new Error('empty mutation');
}

const caseBytes = (c: { bytes?: string; mutation?: Mutation }): Uint8Array => (c.bytes ? h(c.bytes) : mutated(c.mutation!));

test('vectors: invalid SESSION envelopes are refused with their code, and the receiver state is unchanged', () => {
  for (const c of V.invalidSession) {
    const rp = new Replay(V.sessions[c.receiverState.session]!);
    rp.run(c.receiverState.afterStep);
    const actor = c.receiverState.actor;
    const state = rp.state[actor]!;
    const before = encodeState(state);
    const code = sessionCodeOf(() => decrypt(state, caseBytes(c), {
      k: c.k, skipped: rp.skipped[actor].get(c.k) ?? null, now: NOW, maxClockSkewMs: SKEW, maxTtlMs: TTL,
      random: () => new Uint8Array(32).fill(0x55),
    }));
    assert.equal(code, c.expect, c.name);
    assert.deepEqual(encodeState(state), before, `${c.name}: state changed`);
  }
  for (const e of V.sessionEdges) {
    const rp = new Replay(V.sessions[e.receiverState.session]!);
    rp.run(e.receiverState.afterStep);
    const actor = e.receiverState.actor;
    const r = decrypt(rp.state[actor]!, h(e.envelope), {
      k: e.k, skipped: null, now: NOW, maxClockSkewMs: SKEW, maxTtlMs: TTL, random: replay(e.random, e.name),
    });
    eq(encodeMessage(r.message), e.innerBytes, e.name);
    eq(r.receiptKey, e.receiptKey, e.name);
    assert.equal(r.skippedAdded.length, e.storedSkipped, e.name);
    assert.equal(r.skippedAdded[0]!.k, e.firstSkipped.k);
    eq(r.skippedAdded[0]!.messageKey, e.firstSkipped.mk, e.name);
    assert.equal(r.skippedAdded.at(-1)!.k, e.lastSkipped.k);
    eq(r.skippedAdded.at(-1)!.messageKey, e.lastSkipped.mk, e.name);
  }
});

test('vectors: invalid INIT envelopes are refused by the responder with their code', () => {
  for (const c of V.invalidInit) {
    const code = sessionCodeOf(() => respond({
      self: bob, prekeys: bobLookup, envelope: caseBytes(c), now: c.now, maxClockSkewMs: SKEW, maxTtlMs: TTL,
      random: () => new Uint8Array(32).fill(0x55),
    }));
    assert.equal(code, c.expect, c.name);
  }
});

test('vectors: the initiator refuses bundle answers it cannot agree with', () => {
  for (const c of V.invalidInitiate) {
    const peer = decodeBundleAnswer(h(c.answer));
    verifyBundle(peer.bundle, { now: c.now, maxClockSkewMs: SKEW });
    const random = replay(c.random, c.name);
    const code = sessionCodeOf(() => initiate({ self: alice, selfBundle: aliceBundle, peer, message: message(c.inner), now: c.now, maxClockSkewMs: SKEW, random }));
    assert.equal(code, c.expect, c.name);
  }
});

test('vectors: invalid bundles and bundle answers are refused with their code', () => {
  for (const c of V.invalidBundle) {
    const bytes = caseBytes(c);
    const code = sessionCodeOf(() => {
      const bundle = c.kind === 'answer' ? decodeBundleAnswer(bytes).bundle : decodeBundle(bytes);
      verifyBundle(bundle, { now: c.now, maxClockSkewMs: SKEW });
    });
    assert.equal(code, c.expect, c.name);
  }
});

test('vectors: the RECEIPT frame body answering A\'s messages carries each (id, MAC) pair', () => {
  const body = h(V.receiptFrame.body);
  assert.equal(body.length, 2 + 32 * V.receiptFrame.pairs.length);
  // The frame codec reads the same body (the wire version and type byte in front).
  const frame = decodeFrame(Uint8Array.of(WIRE_VERSION, FRAME_TYPE_IDS.RECEIPT, ...body), DEFAULT_LIMITS);
  assert.ok(frame.type === 'RECEIPT');
  assert.deepEqual(frame.receipts.map((r) => [toHex(r.messageId), toHex(r.mac)]), V.receiptFrame.pairs.map((p) => [p.messageId, p.mac]));
  assert.deepEqual(encodeFrame(frame).subarray(2), body);
  assert.equal((body[0]! << 8) | body[1]!, V.receiptFrame.pairs.length);
  const sent = V.sessions[0]!.steps.filter((s) => s.actor === 'A' && (s.op === 'init' || s.op === 'send'));
  V.receiptFrame.pairs.forEach((p, i) => {
    eq(body.subarray(2 + 32 * i, 18 + 32 * i), p.messageId, 'id');
    eq(body.subarray(18 + 32 * i, 34 + 32 * i), p.mac, 'mac');
    eq(receiptMac(h(sent[i]!.receiptKey), h(p.messageId), h(sent[i]!.envelopeSha256!)), p.mac, `receipt ${i}`);
  });
  // decodeMessage of every vector message round-trips
  for (const s of V.sessions) for (const st of s.steps) eq(encodeMessage(decodeMessage(h(st.innerBytes))), st.innerBytes, 'message round trip');
});

test('vectors: read receipts (kind 3, §9.2) parse to their ids and encode back; every malformed one is BAD_MESSAGE', () => {
  const valid = V.controlMessages.valid.filter((c) => c.kind === 3);
  const invalid = V.controlMessages.invalid.filter((c) => c.kind === 3);
  assert.ok(valid.length >= 4 && invalid.length >= 20, 'the vectors cover kind 3');
  for (const c of valid) {
    const m = decodeMessage(h(c.innerBytes));
    assert.equal(m.kind, 'read', c.name);
    assert.deepEqual(parseReadReceipt(m), c.ids, c.name);
    const body = readReceiptBody(c.ids!);
    assert.equal(body, c.inner.body, c.name);
    assert.equal(Buffer.byteLength(body), c.bodyLength, c.name);
    eq(encodeMessage({ ...message(c.inner), body }), c.innerBytes, c.name);
  }
  for (const c of invalid) assert.equal(sessionCodeOf(() => parseReadReceipt(decodeMessage(h(c.innerBytes)))), c.expect, c.name);
});

test('vectors: queue handouts (kind 4, §9.2) parse to their queues and encode back; every malformed one is BAD_MESSAGE', () => {
  const valid = V.controlMessages.valid.filter((c) => c.kind === 4);
  const invalid = V.controlMessages.invalid.filter((c) => c.kind === 4);
  assert.ok(valid.length >= 4 && invalid.length >= 30, 'the vectors cover kind 4');
  for (const c of valid) {
    const m = decodeMessage(h(c.innerBytes));
    assert.equal(m.kind, 'queues', c.name);
    const queues = parseQueueHandout(m);
    assert.deepEqual(queues.map((q) => [q.provider, toHex(q.queue), toHex(q.writeCap)]),
      c.queues!.map((q) => [q.provider, q.queue, q.writeCapability]), c.name);
    for (const q of c.queues!) eq(parseOnionAddress(q.provider).identityKey, q.providerIdentityKey, `${c.name}: provider key`);
    const body = queueHandoutBody(queues);
    assert.equal(body, c.inner.body, c.name);
    assert.equal(Buffer.byteLength(body), c.bodyLength, c.name);
    eq(encodeMessage({ ...message(c.inner), body }), c.innerBytes, c.name);
  }
  for (const c of invalid) assert.equal(sessionCodeOf(() => parseQueueHandout(decodeMessage(h(c.innerBytes)))), c.expect, c.name);
});
