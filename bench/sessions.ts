/**
 * Session crypto per message vs. round 1's sealed box, in the same run (`npm run bench -- sessions`).
 *
 *   session  sender:   encrypt (ratchet step, header + body AEAD, tag) and, when the receipt comes
 *                      back, the receipt MAC check; plus encoding the new state the store writes
 *            receiver: tag window lookup, decrypt, receipt MAC, state encoding
 *   round 1  sender:   sealMessage (Ed25519 signature, X25519 sealed box) and verifyReceipt
 *            receiver: openMessage (open, signature check) and signReceipt
 *
 * Also, once per session: the agreement (initiate + respond, with ML-KEM-768) and a receive that
 * takes a DH ratchet step. Each side is one process (one core at most); "msgs/s" is what the crypto
 * alone allows with both sides sharing min(cores, 2) cores, as in `bench pipeline`.
 *
 *   --n 2000      messages per timed run
 *   --body 200    body bytes
 */
import { availableParallelism } from 'node:os';
import {
  cryptoReady, generateIdentity, openMessage, sealMessage, signReceipt, verifyReceipt,
} from '../src/crypto/index.js';
import {
  TagIndex, decrypt, encodeState, encrypt, initiate, newOneTimePrekeys, newPqPrekey, newSignedPrekey, receiptMac, respond, sessionTag,
  signBundle, verifyReceiptMac, type SessionMessage, type SessionState,
} from '../src/session/index.js';
import { numArg } from './args.js';
import { machineLabel, report, round } from './stats.js';

const SKEW = 24 * 3600 * 1000;
const TTL = 30 * 24 * 3600 * 1000;

function message(i: number, body: string, now: number): SessionMessage {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(12, i);
  return { kind: 'mail', id, createdAt: now, expiresAt: now + 3600_000, threadId: null, inReplyTo: null, subject: `bench ${i}`, body, attachments: [] };
}

function ceiling(senderUs: number, receiverUs: number, cores: number): number {
  return Math.min(1e6 / senderUs, 1e6 / receiverUs, (Math.min(cores, 2) * 1e6) / (senderUs + receiverUs));
}

function sessionRun(n: number, body: string) {
  const now = Date.now();
  const alice = generateIdentity();
  const bob = generateIdentity();
  const spk = newSignedPrekey(1);
  const pq = newPqPrekey(1);
  const [opk] = newOneTimePrekeys(1, 1);
  const lookup = { signedPrekey: () => spk, pqPrekey: () => pq, oneTimePrekey: () => opk };
  const aBundle = signBundle(alice, { signedPrekey: newSignedPrekey(1), pqPrekey: newPqPrekey(1), now });
  const bBundle = signBundle(bob, { signedPrekey: spk, pqPrekey: pq, now });
  let t = performance.now();
  const init = initiate({ self: alice, selfBundle: aBundle, peer: { bundle: bBundle, oneTimePrekey: opk! }, message: message(0, body, now), now, maxClockSkewMs: SKEW });
  const initiateUs = (performance.now() - t) * 1000;
  t = performance.now();
  const resp = respond({ self: bob, prekeys: lookup, envelope: init.envelope, now, maxClockSkewMs: SKEW, maxTtlMs: TTL });
  const respondUs = (performance.now() - t) * 1000;
  let a: SessionState = init.state;
  let b: SessionState = resp.state;
  const index = new TagIndex();
  index.add('s', b);

  t = performance.now();
  const sent = [];
  for (let i = 1; i <= n; i++) {
    const e = encrypt(a, message(i, body, now));
    a = e.state;
    encodeState(a);
    sent.push(e);
  }
  const encryptUs = ((performance.now() - t) * 1000) / n;
  const receipts: Uint8Array[] = [];
  t = performance.now();
  for (const e of sent) {
    const hit = index.lookup(sessionTag(e.envelope))!;
    const r = decrypt(b, e.envelope, { k: hit.k, now, maxClockSkewMs: SKEW, maxTtlMs: TTL });
    b = r.state;
    encodeState(b);
    index.accepted(hit.sessionId, b, hit.k);
    receipts.push(receiptMac(r.receiptKey, r.message.id, r.envelopeHash));
  }
  const receiverUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  sent.forEach((e, i) => {
    if (!verifyReceiptMac(e.receiptKey, message(i + 1, body, now).id, e.envelopeHash, receipts[i]!)) throw new Error('receipt does not verify');
  });
  const senderUs = encryptUs + ((performance.now() - t) * 1000) / n;

  // one receive that takes a DH ratchet step (a round trip's cost, once per direction change)
  const reply = encrypt(b, message(n + 1, body, now));
  t = performance.now();
  decrypt(a, reply.envelope, { k: reply.k, now, maxClockSkewMs: SKEW, maxTtlMs: TTL });
  const dhStepUs = (performance.now() - t) * 1000;
  return { senderUs, receiverUs, initiateUs, respondUs, dhStepUs, envelopeBytes: sent[0]!.envelope.length, initBytes: init.envelope.length };
}

function sealedBoxRun(n: number, body: string) {
  const a = generateIdentity();
  const b = generateIdentity();
  const now = Date.now();
  let t = performance.now();
  const sealed = Array.from({ length: n }, (_, i) =>
    sealMessage(a, b.encryptionKey, { kind: 'mail', recipient: b.identityKey as never, subject: `bench ${i}`, body }, { now }));
  const sealUs = ((performance.now() - t) * 1000) / n;
  const receipts: Uint8Array[] = [];
  t = performance.now();
  for (const s of sealed) {
    openMessage(b, s.envelope, { now, maxSkewMs: 60_000 });
    receipts.push(signReceipt(b, s.id, s.envelopeHash));
  }
  const receiverUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  sealed.forEach((s, i) => verifyReceipt(b.identityKey, s.id, s.envelopeHash, receipts[i]!));
  const senderUs = sealUs + ((performance.now() - t) * 1000) / n;
  return { senderUs, receiverUs, envelopeBytes: sealed[0]!.envelope.length };
}

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 2000);
  const bodySize = numArg(args, 'body', 200);
  const body = 'x'.repeat(bodySize);
  const cores = availableParallelism();
  await cryptoReady();
  // warm up both paths (JIT, key caches), then measure them interleaved so load affects both alike
  sessionRun(200, body);
  sealedBoxRun(200, body);
  const s1 = sessionRun(n, body);
  const v1 = sealedBoxRun(n, body);
  const s2 = sessionRun(n, body);
  const v2 = sealedBoxRun(n, body);
  const best = <T extends { senderUs: number; receiverUs: number }>(x: T, y: T): T => (x.senderUs + x.receiverUs <= y.senderUs + y.receiverUs ? x : y);
  const s = best(s1, s2);
  const v = best(v1, v2);
  const sessionPerMsg = s.senderUs + s.receiverUs;
  const sealedPerMsg = v.senderUs + v.receiverUs;
  const speedup = sealedPerMsg / sessionPerMsg;
  const machine = machineLabel();
  report(
    [
      `sessions crypto, ${n} messages of ${bodySize} bytes (best of 2 runs each, interleaved)`,
      `  session       sender ${round(s.senderUs, 1)} µs, receiver ${round(s.receiverUs, 1)} µs per message → ${round(ceiling(s.senderUs, s.receiverUs, cores), 0)} msgs/s at most`,
      `  sealed box    sender ${round(v.senderUs, 1)} µs, receiver ${round(v.receiverUs, 1)} µs per message → ${round(ceiling(v.senderUs, v.receiverUs, cores), 0)} msgs/s at most`,
      `  ratio         session costs ${round(1 / speedup, 3)}× the sealed box per message (${round(speedup, 2)}× faster)`,
      `  once          initiate ${round(s.initiateUs, 0)} µs, respond ${round(s.respondUs, 0)} µs, a receive with a DH step ${round(s.dhStepUs, 0)} µs`,
      `  sizes         SESSION ${s.envelopeBytes} B, INIT ${s.initBytes} B, sealed box ${v.envelopeBytes} B`,
      `  machine       ${machine}`,
    ],
    {
      bench: 'sessions', n, body_bytes: bodySize,
      session_us_per_msg: { sender: round(s.senderUs, 1), receiver: round(s.receiverUs, 1) },
      sealed_box_us_per_msg: { sender: round(v.senderUs, 1), receiver: round(v.receiverUs, 1) },
      session_ceiling_msgs_per_s: round(ceiling(s.senderUs, s.receiverUs, cores), 0),
      sealed_box_ceiling_msgs_per_s: round(ceiling(v.senderUs, v.receiverUs, cores), 0),
      session_vs_sealed_box_cost: round(1 / speedup, 3),
      speedup: round(speedup, 2),
      once_us: { initiate: round(s.initiateUs, 0), respond: round(s.respondUs, 0), dh_step_receive: round(s.dhStepUs, 0) },
      envelope_bytes: { session: s.envelopeBytes, init: s.initBytes, sealed_box: v.envelopeBytes },
      machine,
    },
  );
}
