/**
 * Session crypto per message (`npm run bench -- sessions`), and the same timing `bench pipeline`
 * uses for its crypto-ceiling line (`sessionCrypto`).
 *
 *   sender:   encrypt (chain step, header + body AEAD, tag) and, when the receipt comes back, the
 *             receipt MAC check; plus decoding and encoding the state the store reads and writes
 *   receiver: tag window lookup, decrypt, receipt MAC, state decoding and encoding
 *
 * Also, once per session: the agreement (initiate + respond, with ML-KEM-768) and a receive that
 * takes a DH ratchet step. Each side is one process (one core at most); "msgs/s" is what the crypto
 * alone allows with both sides sharing min(cores, 2) cores, as in `bench pipeline`. (Round 1's
 * sealed box with signed receipts cost 3.3× this per message on the same host; its code is gone.)
 *
 *   --n 2000      messages per timed run
 *   --body 200    body bytes
 */
import { availableParallelism } from 'node:os';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import {
  TagIndex, decodeState, decrypt, encodeState, encrypt, initiate, newOneTimePrekeys, newPqPrekey, newSignedPrekey, receiptMac, respond, sessionTag,
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

/** The msgs/s the crypto alone allows: each side one process, both sharing min(cores, 2) cores. */
export function ceiling(senderUs: number, receiverUs: number, cores: number): number {
  return Math.min(1e6 / senderUs, 1e6 / receiverUs, (Math.min(cores, 2) * 1e6) / (senderUs + receiverUs));
}

/** Times the per-message session crypto of each side over `n` messages with `body`. */
export function sessionCrypto(n: number, body: string) {
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
    // As the node does: the state is read from the store, and written back, per message.
    const e = encrypt(decodeState(encodeState(a)), message(i, body, now));
    a = e.state;
    encodeState(a);
    sent.push(e);
  }
  const encryptUs = ((performance.now() - t) * 1000) / n;
  const receipts: Uint8Array[] = [];
  t = performance.now();
  for (const e of sent) {
    const hit = index.lookup(sessionTag(e.envelope))!;
    const r = decrypt(decodeState(encodeState(b)), e.envelope, { k: hit.k, now, maxClockSkewMs: SKEW, maxTtlMs: TTL });
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

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 2000);
  const bodySize = numArg(args, 'body', 200);
  const body = 'x'.repeat(bodySize);
  const cores = availableParallelism();
  await cryptoReady();
  sessionCrypto(200, body);
  const s1 = sessionCrypto(n, body);
  const s2 = sessionCrypto(n, body);
  const s = s1.senderUs + s1.receiverUs <= s2.senderUs + s2.receiverUs ? s1 : s2;
  const machine = machineLabel();
  report(
    [
      `sessions crypto, ${n} messages of ${bodySize} bytes (best of 2 runs)`,
      `  per message   sender ${round(s.senderUs, 1)} µs, receiver ${round(s.receiverUs, 1)} µs → ${round(ceiling(s.senderUs, s.receiverUs, cores), 0)} msgs/s at most`,
      `  once          initiate ${round(s.initiateUs, 0)} µs, respond ${round(s.respondUs, 0)} µs, a receive with a DH step ${round(s.dhStepUs, 0)} µs`,
      `  sizes         SESSION ${s.envelopeBytes} B, INIT ${s.initBytes} B`,
      `  machine       ${machine}`,
    ],
    {
      bench: 'sessions', n, body_bytes: bodySize,
      session_us_per_msg: { sender: round(s.senderUs, 1), receiver: round(s.receiverUs, 1) },
      session_ceiling_msgs_per_s: round(ceiling(s.senderUs, s.receiverUs, cores), 0),
      once_us: { initiate: round(s.initiateUs, 0), respond: round(s.respondUs, 0), dh_step_receive: round(s.dhStepUs, 0) },
      envelope_bytes: { session: s.envelopeBytes, init: s.initBytes },
      machine,
    },
  );
}
