/**
 * The session core against the known-answer vectors of the independent Python implementation
 * (test/vectors/session.json, written by test/vectors/session_vectors.py from PROTOCOL.md alone).
 * Every operation is replayed with the recorded random inputs and compared byte for byte.
 *
 * The first vectors used the draft's INIT sender key (raw CT in the HKDF info, which Node cannot
 * compute: its info is capped at 1024 bytes). When the file still carries that KS, the INIT is
 * compared up to its sealed bundle and its encrypted header, and the rest of the replay runs on the
 * INIT this implementation made (whose agreement keys are the same); once the file is regenerated
 * the INIT is compared whole.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cryptoReady, identityFromSecrets, type Identity } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/bytes.js';
import {
  SessionError, decodeBundle, decodeBundleAnswer, decrypt, encrypt, initiate, receiptMac, respond, verifyBundle,
  type OneTimePrekey, type PqPrekey, type PrekeyLookup, type SessionMessage, type SessionState, type SignedPrekey, type SkippedKey,
} from '../../src/session/index.js';
import { kdfChain, kdfRoot, messageKeys, tagFor } from '../../src/session/ratchet.js';
import { encodeMessage as encodeInner, pad, paddedLength } from '../../src/session/message.js';
import { hkdf, kemDecapsulate, kemEncapsulate, kemKeyPair, label, sha256 } from '../../src/session/primitives.js';
import { sessionCodeOf } from '../fixtures/sessions.js';

before(cryptoReady);

type J = any;
const V: J = JSON.parse(readFileSync(new URL('../../../test/vectors/session.json', import.meta.url), 'utf8'));
const h = fromHex;
const hex = toHex;
const LIMITS = { now: V.now as number, maxClockSkewMs: V.limits.maxClockSkew as number, maxTtlMs: V.limits.maxTtl as number };

interface PartyKeys {
  id: Identity;
  spk: SignedPrekey;
  pq: PqPrekey;
  opks: Map<number, OneTimePrekey>;
}

function party(name: string): PartyKeys {
  const p = V.parties[name];
  return {
    id: identityFromSecrets(h(p.identitySeed), h(p.encryptionSecret)),
    spk: { id: p.spkId, secret: h(p.spkSecret), public: h(p.spk) },
    pq: { id: p.pqpkId, seed: h(p.pqpkSeed), public: h(p.pqpk) },
    opks: new Map((p.opks as J[]).map((o) => [o.id, { id: o.id, secret: h(o.secret), public: h(o.public) }])),
  };
}

const lookup = (p: PartyKeys): PrekeyLookup => ({
  signedPrekey: (id) => (id === p.spk.id ? p.spk : undefined),
  pqPrekey: (id) => (id === p.pq.id ? p.pq : undefined),
  oneTimePrekey: (id) => p.opks.get(id),
});

/** A random source that hands out the recorded values, in order, and checks the sizes asked for. */
function replay(values: string[]) {
  const queue = values.map(h);
  return (n: number) => {
    const v = queue.shift();
    assert.ok(v, `asked for ${n} random bytes beyond the ${values.length} recorded`);
    assert.equal(v.length, n, 'random draws in the recorded order and sizes');
    return v;
  };
}

function inner(j: J): SessionMessage {
  const kinds = { 1: 'mail', 2: 'chat', 3: 'read' } as const;
  return {
    kind: kinds[j.kind as 1 | 2 | 3], id: h(j.id), createdAt: j.createdAt, expiresAt: j.expiresAt,
    threadId: /^0+$/.test(j.threadId) ? null : h(j.threadId), inReplyTo: /^0+$/.test(j.inReplyTo) ? null : h(j.inReplyTo),
    subject: j.subject, body: j.body,
    attachments: (j.attachments as J[]).map((a) => ({ name: a.name, mediaType: a.mediaType, data: h(a.data) })),
  };
}

/** Whether the file's KS is this spec's (SHA256(CT) in the info) or the draft's (raw CT). */
function ksIsCurrent(s: J): boolean {
  const a = s.agreement;
  const ikm = new Uint8Array([...h('ff'.repeat(32)), ...h(a.dh2), ...h(a.dh3), ...(a.dh4 ? h(a.dh4) : []), ...h(a.ss)]);
  const ikB = h(V.parties[s.responder].identityKey);
  const ks = hkdf(new Uint8Array(32), ikm, new Uint8Array([...label('onionpost/v2/init-sender'), ...ikB, ...h(a.EKA), ...sha256(h(a.ct))]), 32);
  return hex(ks) === a.ks;
}

interface Side {
  keys: PartyKeys;
  state: SessionState | null;
  skipped: Map<number, SkippedKey>;
  sent: Map<number, Uint8Array>;
}

/** Replays session `index` up to (and including) step `until`; returns both sides. */
function run(index: number, until = Infinity, check = false): Record<'A' | 'B', Side> {
  const s = V.sessions[index];
  const exact = ksIsCurrent(s);
  const sides: Record<'A' | 'B', Side> = {
    A: { keys: party(s.initiator), state: null, skipped: new Map(), sent: new Map() },
    B: { keys: party(s.responder), state: null, skipped: new Map(), sent: new Map() },
  };
  const answer = s.bundleAnswer === null
    ? { bundle: decodeBundle(h(V.parties[s.responder].bundle)), oneTimePrekey: null }
    : decodeBundleAnswer(h(V.bundleAnswers[s.bundleAnswer].answer));
  (s.steps as J[]).forEach((st, i) => {
    if (i > until) return;
    const me = sides[st.actor as 'A' | 'B'];
    const what = `session ${index} step ${i} (${st.actor} ${st.op} k=${st.k})`;
    if (st.op === 'init') {
      const r = initiate({
        self: me.keys.id, selfBundle: decodeBundle(h(V.parties[s.initiator].bundle)), peer: answer, message: inner(st.inner),
        now: V.now, maxClockSkewMs: LIMITS.maxClockSkewMs, random: replay(st.random),
      });
      me.state = r.state;
      me.sent.set(0, exact ? h(st.envelope) : r.envelope);
      if (check) {
        const theirs = h(st.envelope);
        const sb = 1136 + ((theirs[1134]! << 8) | theirs[1135]!);
        assert.equal(r.envelope.length, theirs.length, what);
        assert.equal(hex(r.envelope.subarray(0, 1136)), hex(theirs.subarray(0, 1136)), `${what}: fixed part`);
        assert.equal(hex(r.envelope.subarray(sb, sb + 68)), hex(theirs.subarray(sb, sb + 68)), `${what}: encrypted header`);
        assert.equal(hex(r.receiptKey), st.receiptKey, what);
        assert.equal(hex(r.state.rootKey), s.agreement.rkA, what);
        assert.equal(hex(r.state.sendTagKey), s.agreement.tkAB, what);
        if (exact) {
          assert.equal(hex(r.envelope), st.envelope, `${what}: whole INIT`);
          assert.equal(hex(receiptMac(r.receiptKey, h(st.inner.id), r.envelopeHash)), st.receiptMac, what);
        }
      }
    } else if (st.op === 'send') {
      const r = encrypt(me.state!, inner(st.inner), { random: replay(st.random) });
      me.state = r.state;
      me.sent.set(r.k, r.envelope);
      if (check) {
        assert.equal(r.k, st.k, what);
        assert.equal(hex(r.tag), st.tag, what);
        assert.equal(hex(r.envelope), st.envelope, what);
        assert.equal(hex(r.receiptKey), st.receiptKey, what);
        assert.equal(hex(receiptMac(r.receiptKey, h(st.inner.id), r.envelopeHash)), st.receiptMac, what);
      }
    } else {
      const from = sides[st.from as 'A' | 'B'];
      const envelope = from.sent.get(st.k)!;
      let state: SessionState;
      let receiptKey: Uint8Array;
      let innerBytes: string;
      if (st.op === 'receive-init') {
        const r = respond({ self: me.keys.id, prekeys: lookup(me.keys), envelope, ...LIMITS, random: replay(st.random) });
        ({ state, receiptKey } = r);
        innerBytes = r.message && hex(encodeInner(r.message));
        if (check) assert.equal(hex(r.peer.bytes), V.parties[s.initiator].bundle, what);
      } else {
        const r = decrypt(me.state!, envelope, { k: st.k, skipped: me.skipped.get(st.k) ?? null, ...LIMITS, random: replay(st.random) });
        ({ state, receiptKey } = r);
        innerBytes = hex(encodeInner(r.message));
        if (r.skippedUsed !== null) me.skipped.delete(r.skippedUsed);
        for (const k of r.skippedAdded) me.skipped.set(k.k, k);
        if (check) assert.equal(r.skippedUsed !== null, st.usedSkippedKey, what);
      }
      me.state = state;
      if (check) {
        assert.equal(innerBytes, st.innerBytes, what);
        assert.equal(hex(receiptKey), st.receiptKey, what);
        assert.deepEqual(
          [...me.skipped.values()].map((k) => ({ k: k.k, n: k.n, hk: hex(k.headerKey), mk: hex(k.messageKey) })).sort((a, b) => a.k - b.k),
          st.storedSkipped, `${what}: stored skipped keys`,
        );
        if (st.dhStep) {
          assert.equal(hex(state.dhSelf.public), st.step.newRatchetPublic, what);
          assert.equal(hex(state.rootKey), st.step.rk, what);
          assert.equal(hex(state.nextHeaderKeyRecv), st.step.nhkr, what);
          assert.equal(hex(state.nextHeaderKeySend), st.step.nhks, what);
        }
      }
    }
  });
  return sides;
}


test('KAT: ML-KEM-768 key generation, encapsulation and decapsulation', () => {
  for (const k of V.mlkem768 as J[]) {
    const kp = kemKeyPair(h(k.seed));
    assert.equal(hex(kp.publicKey), k.ek);
    const e = kemEncapsulate(kp.publicKey, h(k.m));
    assert.equal(hex(e.cipherText), k.ct);
    assert.equal(hex(e.sharedSecret), k.ss);
    assert.equal(hex(kemDecapsulate(h(k.ct), kp.secretKey)), k.ss);
  }
});

test('KAT: KDF_RK, KDF_CK, MSG_KEYS, tags, padding, receipts', () => {
  const rk = kdfRoot(h(V.kdf.kdfRk.rk), h(V.kdf.kdfRk.dhOut));
  assert.deepEqual([hex(rk.rootKey), hex(rk.chainKey), hex(rk.nextHeaderKey)], [V.kdf.kdfRk.rkOut, V.kdf.kdfRk.ck, V.kdf.kdfRk.nhk]);
  const ck = kdfChain(h(V.kdf.kdfCk.ck));
  assert.deepEqual([hex(ck.chainKey), hex(ck.messageKey)], [V.kdf.kdfCk.ckOut, V.kdf.kdfCk.mk]);
  const mk = messageKeys(h(V.kdf.msgKeys.mk));
  assert.deepEqual([hex(mk.aeadKey), hex(mk.receiptKey)], [V.kdf.msgKeys.ak, V.kdf.msgKeys.rck]);
  for (const t of V.tags as J[]) assert.equal(hex(tagFor(h(t.tagKey), t.k)), t.tag, `tag k=${t.k}`);
  for (const p of V.padding as J[]) {
    if (p.error) {
      assert.equal(sessionCodeOf(() => paddedLength(p.prefixLength, p.innerLength)), p.error);
      continue;
    }
    assert.equal(p.innerPattern, 'byte i = (7*i + 3) mod 256');
    const bytes = Uint8Array.from({ length: p.innerLength }, (_, i) => (7 * i + 3) % 256);
    const length = paddedLength(p.prefixLength, p.innerLength);
    assert.equal(length, p.paddedLength, `${p.kind} prefix ${p.prefixLength} inner ${p.innerLength}`);
    assert.equal(p.prefixLength + length + 16, p.bucket);
    assert.equal(hex(sha256(pad(bytes, length))), p.paddedSha256);
  }
  for (const r of V.receipts as J[]) {
    assert.equal(hex(sha256(h(r.envelope))), r.envelopeSha256);
    assert.equal(hex(receiptMac(h(r.receiptKey), h(r.messageId), h(r.envelopeSha256))), r.mac);
  }
  const pairs = V.receiptFrame.pairs as J[];
  const body = new Uint8Array([(pairs.length >> 8) & 0xff, pairs.length & 0xff, ...pairs.flatMap((p) => [...h(p.messageId ?? p.id), ...h(p.mac)])]);
  assert.equal(hex(body), V.receiptFrame.body);
});

test('KAT: bundles and bundle answers decode and verify; invalid ones give the vector\'s code', () => {
  for (const name of ['alice', 'bob']) {
    const p = V.parties[name];
    const b = decodeBundle(h(p.bundle));
    assert.equal(hex(b.bytes), p.bundle);
    assert.equal(b.onion, p.onion);
    assert.equal(hex(b.signature), p.bundleSignature);
    verifyBundle(b, { ...LIMITS, expectedIdentity: h(p.identityKey) });
    const mine = party(name);
    assert.equal(hex(mine.id.identityKey), p.identityKey);
    assert.equal(hex(mine.id.encryptionKey), p.encryptionKey);
    assert.equal(hex(kemKeyPair(mine.pq.seed).publicKey), p.pqpk);
  }
  for (const a of V.bundleAnswers as J[]) {
    const d = decodeBundleAnswer(h(a.answer));
    verifyBundle(d.bundle, LIMITS);
    assert.equal(d.oneTimePrekey?.id ?? null, a.opkId ?? null);
  }
  for (const e of V.validBundleEdges as J[]) {
    const b = decodeBundle(e.bytes ? h(e.bytes) : h(V.parties[e.owner].bundle));
    verifyBundle(b, { ...LIMITS, now: e.now ?? V.now });
  }
  for (const c of V.invalidBundle as J[]) {
    const bytes = mutate(c);
    const code = sessionCodeOf(() => {
      if (c.kind === 'answer') verifyBundle(decodeBundleAnswer(bytes).bundle, { ...LIMITS, now: c.now });
      else verifyBundle(decodeBundle(bytes), { ...LIMITS, now: c.now });
    });
    assert.equal(code, c.expect, c.name);
  }
});

function mutate(c: J, own?: Map<string, Uint8Array>): Uint8Array {
  if (c.bytes) return h(c.bytes);
  const m = c.mutation;
  let base: Uint8Array;
  const sess = /^session(\d+):([AB]):(\d+)$/.exec(m.of);
  if (sess) base = own?.get(m.of) ?? h(V.sessions[+sess[1]!].steps.find((st: J) => st.actor === sess[2] && (st.op === 'send' || st.op === 'init') && st.k === +sess[3]!).envelope);
  else if (m.of.startsWith('bundle:')) base = h(V.parties[m.of.slice(7)].bundle);
  else base = h(V.bundleAnswers[+m.of.slice(7)].answer);
  let out = Uint8Array.from(base);
  if (m.flip) out[m.flip[0]] = out[m.flip[0]]! ^ m.flip[1];
  if (m.truncate !== undefined) out = out.slice(0, m.truncate);
  if (m.append) out = new Uint8Array([...out, ...h(m.append)]);
  return out;
}

test('KAT: both sessions replayed step by step, byte for byte', () => {
  for (let i = 0; i < V.sessions.length; i++) run(i, Infinity, true);
});

test('KAT: invalid SESSION envelopes and edge cases give the vector\'s outcome', () => {
  for (const c of V.invalidSession as J[]) {
    const rs = c.receiverState;
    const side = run(rs.session, rs.afterStep)[rs.actor as 'A' | 'B'];
    const env = mutate(c);
    let code: string;
    try {
      decrypt(side.state!, env, { k: c.k, skipped: side.skipped.get(c.k) ?? null, ...LIMITS, now: c.now ?? V.now, random: () => new Uint8Array(32).fill(7) });
      code = 'no error';
    } catch (err) {
      assert.ok(err instanceof SessionError, `${c.name}: ${String(err)}`);
      code = err.code;
    }
    assert.equal(code, c.expect, c.name);
  }
  for (const e of V.sessionEdges as J[]) {
    const rs = e.receiverState;
    const side = run(rs.session, rs.afterStep)[rs.actor as 'A' | 'B'];
    const r = decrypt(side.state!, h(e.envelope), { k: e.k, skipped: side.skipped.get(e.k) ?? null, ...LIMITS, random: replay(e.random) });
    assert.equal(hex(encodeInner(r.message)), e.innerBytes, e.name);
    assert.equal(hex(r.receiptKey), e.receiptKey, e.name);
    const skipped = [...side.skipped.values(), ...r.skippedAdded].sort((a, b) => a.k - b.k);
    assert.equal(skipped.length, e.storedSkipped, e.name);
    assert.deepEqual({ k: skipped[0]!.k, mk: hex(skipped[0]!.messageKey) }, e.firstSkipped);
    assert.deepEqual({ k: skipped.at(-1)!.k, mk: hex(skipped.at(-1)!.messageKey) }, e.lastSkipped);
  }
});

test('KAT: invalid INIT envelopes give the vector\'s code', (t) => {
  const s0 = V.sessions[0];
  const exact = ksIsCurrent(s0);
  const own = new Map([['session0:A:0', run(0, 0).A.sent.get(0)!]]);
  let skipped = 0;
  for (const c of V.invalidInit as J[]) {
    if (!exact && c.bytes) {
      skipped++; // re-encrypted under the draft's KS: cannot open here until the file is regenerated
      continue;
    }
    const env = mutate(c, exact ? undefined : own);
    const bob = party(s0.responder);
    const code = sessionCodeOf(() => respond({ self: bob.id, prekeys: lookup(bob), envelope: env, ...LIMITS, now: c.now ?? V.now, random: () => new Uint8Array(32).fill(7) }));
    assert.equal(code, c.expect, c.name);
  }
  if (skipped) t.diagnostic(`${skipped} INIT cases built on the draft's sender key were skipped; regenerate test/vectors/session.json`);
});

