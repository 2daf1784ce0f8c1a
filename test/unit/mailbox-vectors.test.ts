/**
 * The mailbox protocol against test/vectors/mailbox.json: known answers computed by an independent
 * Python implementation of PROTOCOL.md §14 and of the provider binding, subscriber tag and public
 * queue described in src/crypto/provider.ts's doc comments (test/vectors/mailbox_vectors.py, on the
 * `cryptography` package), not by this code. Every valid frame is encoded byte for byte and decoded
 * back to its fields, by the direction's decoder and refused by the other's; every invalid frame is
 * refused with the code the specification gives (WATCH and NOTIFY included); statement bodies (ACCOUNT and ACCOUNT_STATUS included), signatures (Ed25519 is
 * deterministic), capability hashes, tag keys, tags, public queue ids and read capabilities, and
 * bindings are reproduced exactly, and signatures made for something else do not verify.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/bytes.js';
import { toBase58, toHex41 } from '../../src/chain/tron.js';
import {
  CryptoError, contactQueueReadCap, cryptoReady, identityFromSecrets, providerBindingBody, publicQueueId, publicQueueReadCap, signProviderBinding,
  subscriberTag, subscriberTagKey, verifyProviderBinding, type Identity,
} from '../../src/crypto/index.js';
import {
  ProviderError, capabilityHash, decodeMailboxAnswer, decodeMailboxFrame, decodeMailboxRequest, encodeMailboxFrame,
  verifyDepositReceipt, type MailboxFrame,
} from '../../src/provider/index.js';
import { DOMAINS, accountBody, accountStatusBody, depositBody, queueBody, sign, subscribeBody, termsBody, verify } from '../../src/provider/statements.js';

const here = dirname(fileURLToPath(import.meta.url));
// Vectors live in the source tree (test/vectors), two levels above dist/test/unit.
const V = JSON.parse(readFileSync(join(here, '../../../test/vectors/mailbox.json'), 'utf8')) as Vectors;

type PartyName = 'provider' | 'otherProvider' | 'alice' | 'bob';
interface Fill { fill: number; length: number }
type Hexish = string | Fill;
interface Fields { [k: string]: unknown }
interface FrameV { name: string; direction: Dir; fields: Fields; frame?: string; frameParts?: Hexish[]; frameSha256?: string }
type Dir = 'request' | 'answer';
interface StatementV { name: string; kind: keyof typeof DOMAINS; domain: string; fields: Fields; body: string; signature: string }
interface BindingV { owner: string; ownerBase58: string; identityKey: string; chainId: string; contract: string; contractBase58: string; signature: string }
interface Vectors {
  now: number;
  limits: { maxEnvelope: number; fetchLimit: [number, number]; ackCount: [number, number]; heldCount: [number, number]; maxReason: number };
  parties: Record<PartyName, { identitySeed: string; identityKey: string; tagKey: string }>;
  capabilities: { name: string; capability: string; hash: string }[];
  queues: Record<'private' | 'public', { queue: string; writeCapability: string | null; writeHash: string | null; readCapability: string; readHash: string }>;
  subscriberTags: { subscriber: PartyName; identitySeed: string; tagKey: string; provider: PartyName; providerIdentityKey: string; tag: string }[];
  publicQueues: {
    owner: PartyName; identitySeed: string; ownerIdentityKey: string; provider: PartyName; providerIdentityKey: string;
    queue: string; readKey: string; readCapability: string; readHash: string;
  }[];
  contactQueues: {
    owner: PartyName; identitySeed: string; ownerIdentityKey: string; provider: PartyName; providerIdentityKey: string;
    queue: string; isPublicQueueId: boolean; readKey: string; readCapability: string; readHash: string;
  }[];
  bindings: (BindingV & { name: string; signer: PartyName; domain: string; body: string })[];
  invalidBindings: (BindingV & { name: string })[];
  statements: (StatementV & { signer: PartyName })[];
  invalidStatements: (StatementV & { signerKey: string })[];
  frames: FrameV[];
  invalidFrames: { name: string; direction: Dir; bytes?: string; mutation?: { of: string; truncate?: number; set?: [number, number]; append?: string }; expect: 'MALFORMED' | 'BAD_SIZE' }[];
}

const MAX = V.limits.maxEnvelope;
const h = fromHex;
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
const isFill = (x: unknown): x is Fill => typeof x === 'object' && x !== null && 'fill' in x;
const bytesOf = (x: Hexish): Uint8Array => (isFill(x) ? new Uint8Array(x.length).fill(x.fill) : h(x));
const orNull = (x: unknown): Uint8Array | null => (x === null ? null : bytesOf(x as Hexish));
const hexOf = (b: Uint8Array): string => toHex(b);

let ids: Record<PartyName, Identity>;

before(async () => {
  await cryptoReady();
  const id = (p: PartyName) => identityFromSecrets(h(V.parties[p].identitySeed), sha256(new TextEncoder().encode(`encryption/${p}`)));
  ids = { provider: id('provider'), otherProvider: id('otherProvider'), alice: id('alice'), bob: id('bob') };
});

/** The vector's field names (spelled out, as in PROTOCOL.md) as src/provider/wire.ts's frame. */
function frameOf(v: FrameV): MailboxFrame {
  const f = v.fields;
  const b = (k: string) => bytesOf(f[k] as Hexish);
  const n = (k: string) => f[k] as number;
  const id = n('requestId');
  switch (f.type) {
    case 'SUBSCRIBE': return { type: 'SUBSCRIBE', id, identity: b('identity'), time: n('time'), tag: orNull(f.tag), sig: b('signature') };
    case 'CREATE_QUEUE':
      return { type: 'CREATE_QUEUE', id, identity: b('identity'), time: n('time'), queue: b('queue'), writeHash: orNull(f.writeHash), readHash: b('readHash'), sig: b('signature') };
    case 'REMOVE_QUEUE': return { type: 'REMOVE_QUEUE', id, identity: b('identity'), time: n('time'), queue: b('queue'), sig: b('signature') };
    case 'DEPOSIT': return { type: 'DEPOSIT', id, queue: b('queue'), writeCap: orNull(f.writeCapability), envelope: b('envelope') };
    case 'FETCH': return { type: 'FETCH', id, queue: b('queue'), readCap: b('readCapability'), afterSeq: n('afterSeq'), limit: n('limit') };
    case 'ACK': return { type: 'ACK', id, queue: b('queue'), readCap: b('readCapability'), seqs: f.seqs as number[] };
    case 'ACCOUNT': return { type: 'ACCOUNT', id, identity: b('identity'), time: n('time'), sig: b('signature') };
    case 'WATCH': return { type: 'WATCH', id, queue: b('queue'), readCap: b('readCapability') };
    case 'TERMS': return { type: 'TERMS', id, retentionMs: n('retentionMs'), quotaBytes: n('quotaBytes'), time: n('time'), sig: b('signature') };
    case 'OK': return { type: 'OK', id };
    case 'DEPOSITED':
      return { type: 'DEPOSITED', id, seq: n('seq'), digest: b('digest'), depositedAt: n('depositedAt'), expiresAt: n('expiresAt'), sig: b('signature') };
    case 'HELD': {
      const items = f.envelopes as { seq: number; depositedAt: number; envelope: Hexish }[];
      return { type: 'HELD', id, items: items.map((e) => ({ seq: e.seq, depositedAt: e.depositedAt, envelope: bytesOf(e.envelope) })) };
    }
    case 'ACKED': return { type: 'ACKED', id, count: n('count') };
    case 'ACCOUNT_STATUS':
      return {
        type: 'ACCOUNT_STATUS', id, paidUntil: n('paidUntil'), graceMs: n('graceMs'), heldCount: n('heldCount'), heldBytes: n('heldBytes'),
        quotaBytes: n('quotaBytes'), time: n('time'), sig: b('signature'),
      };
    case 'NOTIFY': return { type: 'NOTIFY', id, queue: b('queue') };
    case 'ERROR': return { type: 'ERROR', id, code: n('code'), retryable: f.retryable as boolean, reason: f.reason as string };
    default: throw new Error(`unknown frame type in vector ${v.name}`);
  }
}

function frameBytes(v: FrameV): Uint8Array {
  if (v.frame !== undefined) return h(v.frame);
  const parts = v.frameParts!.map(bytesOf);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  assert.equal(hexOf(sha256(out)), v.frameSha256, `${v.name}: frame parts`);
  return out;
}

const decoders = { request: decodeMailboxRequest, answer: decodeMailboxAnswer } as const;
const other = (d: Dir): Dir => (d === 'request' ? 'answer' : 'request');

function refused(fn: () => unknown, code: string, what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProviderError, `${what}: ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  }, what);
}

test('vectors: identities, capability hashes, subscriber tag keys and tags', () => {
  for (const p of Object.keys(ids) as PartyName[]) {
    assert.equal(hexOf(ids[p].identityKey), V.parties[p].identityKey, `${p}: identity key`);
    assert.equal(hexOf(subscriberTagKey(ids[p])), V.parties[p].tagKey, `${p}: tag key`);
  }
  assert.ok(V.capabilities.length >= 5);
  for (const c of V.capabilities) assert.equal(hexOf(capabilityHash(h(c.capability))), c.hash, `capability ${c.name}`);
  for (const q of Object.values(V.queues)) {
    assert.equal(hexOf(capabilityHash(h(q.readCapability))), q.readHash);
    assert.equal(q.writeCapability === null ? null : hexOf(capabilityHash(h(q.writeCapability))), q.writeHash);
  }
  assert.equal(V.subscriberTags.length, 4);
  for (const t of V.subscriberTags) {
    const key = subscriberTagKey(ids[t.subscriber]);
    assert.equal(hexOf(key), t.tagKey, `${t.subscriber}: tag key`);
    assert.equal(hexOf(subscriberTag(key, h(t.providerIdentityKey))), t.tag, `${t.subscriber} at ${t.provider}: tag`);
  }
});

test('vectors: public queues (id from the owner and provider identity keys, read capability from the owner\'s seed)', () => {
  assert.equal(V.publicQueues.length, 4);
  for (const q of V.publicQueues) {
    const what = `${q.owner} at ${q.provider}`;
    assert.equal(q.ownerIdentityKey, hexOf(ids[q.owner].identityKey), `${what}: owner key`);
    assert.equal(q.providerIdentityKey, hexOf(ids[q.provider].identityKey), `${what}: provider key`);
    assert.equal(hexOf(publicQueueId(h(q.ownerIdentityKey), h(q.providerIdentityKey))), q.queue, `${what}: queue`);
    const cap = publicQueueReadCap(ids[q.owner], h(q.providerIdentityKey));
    assert.equal(hexOf(cap), q.readCapability, `${what}: read capability`);
    assert.equal(hexOf(capabilityHash(cap)), q.readHash, `${what}: read hash`);
  }
  // Another provider names another queue with another read capability, so one provider's records say
  // nothing about the user's queue at the next; and the owner and provider keys are not interchangeable.
  const [alice, provider, other] = [ids.alice, ids.provider.identityKey, ids.otherProvider.identityKey];
  assert.notEqual(hexOf(publicQueueId(alice.identityKey, provider)), hexOf(publicQueueId(alice.identityKey, other)));
  assert.notEqual(hexOf(publicQueueReadCap(alice, provider)), hexOf(publicQueueReadCap(alice, other)));
  assert.notEqual(hexOf(publicQueueId(alice.identityKey, provider)), hexOf(publicQueueId(provider, alice.identityKey)));
});

test('vectors: contact queues (drawn id, read capability from the owner\'s seed, the provider key and the queue)', () => {
  assert.equal(V.contactQueues.length, 8);
  for (const q of V.contactQueues) {
    const what = `${q.owner}'s queue ${q.queue} at ${q.provider}`;
    assert.equal(q.identitySeed, V.parties[q.owner].identitySeed, `${what}: seed`);
    assert.equal(q.ownerIdentityKey, hexOf(ids[q.owner].identityKey), `${what}: owner key`);
    assert.equal(q.providerIdentityKey, hexOf(ids[q.provider].identityKey), `${what}: provider key`);
    assert.equal(hexOf(publicQueueId(h(q.ownerIdentityKey), h(q.providerIdentityKey))) === q.queue, q.isPublicQueueId, `${what}: public id?`);
    const cap = contactQueueReadCap(ids[q.owner], h(q.providerIdentityKey), h(q.queue));
    assert.equal(hexOf(cap), q.readCapability, `${what}: read capability`);
    assert.equal(hexOf(capabilityHash(cap)), q.readHash, `${what}: read hash`);
    // Another label: even a contact queue under the public queue's id is read with another capability.
    assert.notEqual(hexOf(cap), hexOf(publicQueueReadCap(ids[q.owner], h(q.providerIdentityKey))), `${what}: not the public read capability`);
  }
  assert.ok(V.contactQueues.some((q) => q.isPublicQueueId), 'a vector reuses the public queue id');
});

test('vectors: provider bindings (body, Ed25519 signature under "provider-binding/v1"), and bindings that do not verify', () => {
  const fields = (b: BindingV) => ({ owner: h(b.owner), identityKey: h(b.identityKey), chainId: BigInt(b.chainId), contract: h(b.contract) });
  const tron = (b: BindingV) => {
    assert.equal(toBase58(b.owner), b.ownerBase58);
    assert.equal(toHex41(b.contractBase58), b.contract);
  };
  assert.equal(V.bindings.length, 4);
  for (const b of V.bindings) {
    tron(b);
    assert.equal(b.domain, 'provider-binding/v1');
    assert.equal(hexOf(providerBindingBody(fields(b))), b.body, `${b.name}: body`);
    const { owner, chainId, contract } = fields(b);
    assert.equal(hexOf(signProviderBinding(ids[b.signer], { owner, chainId, contract })), b.signature, `${b.name}: signature`);
    verifyProviderBinding(fields(b), h(b.signature));
  }
  assert.equal(V.invalidBindings.length, 4);
  for (const b of V.invalidBindings) {
    tron(b);
    assert.throws(() => verifyProviderBinding(fields(b), h(b.signature)), (e: unknown) => e instanceof CryptoError && e.code === 'BAD_RECORD', b.name);
  }
});

function statementBody(s: StatementV): Uint8Array {
  const f = s.fields;
  const b = (k: string) => h(f[k] as string);
  const n = (k: string) => f[k] as number;
  switch (s.kind) {
    case 'subscribe': return subscribeBody(b('provider'), b('subscriber'), n('time'), orNull(f.tag));
    case 'queue': return queueBody(f.op as 'create' | 'remove', b('provider'), b('owner'), n('time'), b('queue'), orNull(f.writeHash), orNull(f.readHash));
    case 'terms': return termsBody(b('provider'), b('subscriber'), n('retentionMs'), n('quotaBytes'), n('time'));
    case 'deposit': return depositBody(b('provider'), b('queue'), b('digest'), n('depositedAt'), n('expiresAt'));
    case 'account': return accountBody(b('provider'), b('subscriber'), n('time'));
    case 'accountStatus':
      return accountStatusBody(b('provider'), b('subscriber'), {
        paidUntil: n('paidUntil'), graceMs: n('graceMs'), heldCount: n('heldCount'), heldBytes: n('heldBytes'), quotaBytes: n('quotaBytes'), time: n('time'),
      });
    default: throw new Error(`no statement kind ${s.kind} in mailbox.json`);
  }
}

test('vectors: the six signed statements (bodies and deterministic signatures), and signatures that must not verify', () => {
  assert.deepEqual(new Set(V.statements.map((s) => s.kind)), new Set(['subscribe', 'queue', 'terms', 'deposit', 'account', 'accountStatus']));
  for (const s of V.statements) {
    assert.equal(DOMAINS[s.kind], s.domain, `${s.name}: domain`);
    assert.equal(hexOf(statementBody(s)), s.body, `${s.name}: body`);
    assert.equal(hexOf(sign(ids[s.signer], s.domain, h(s.body))), s.signature, `${s.name}: signature`);
    assert.ok(verify(ids[s.signer].identityKey, s.domain, h(s.body), h(s.signature)), `${s.name}: verifies`);
  }
  assert.ok(V.invalidStatements.length >= 8);
  for (const s of V.invalidStatements) {
    assert.equal(hexOf(statementBody(s)), s.body, `${s.name}: body`);
    assert.ok(!verify(h(s.signerKey), s.domain, h(s.body), h(s.signature)), `${s.name}: must not verify`);
  }
  // A DEPOSITED answer's receipt, as the depositor's client checks it.
  const provider = ids.provider.identityKey;
  for (const v of V.frames.filter((f) => f.fields.type === 'DEPOSITED')) {
    const f = frameOf(v) as Extract<MailboxFrame, { type: 'DEPOSITED' }>;
    const deposit = V.statements.find((s) => s.kind === 'deposit' && s.signature === v.fields.signature)!;
    const envelope = V.frames.find((d) => d.fields.type === 'DEPOSIT' && hexOf(sha256(bytesOf(d.fields.envelope as Hexish))) === deposit.fields.digest)!;
    const receipt = { seq: f.seq, queue: h(deposit.fields.queue as string), digest: f.digest, depositedAt: f.depositedAt, expiresAt: f.expiresAt, sig: f.sig };
    assert.ok(verifyDepositReceipt(provider, receipt, bytesOf(envelope.fields.envelope as Hexish)), `${v.name}: receipt`);
  }
  // An ACCOUNT_STATUS answer, as the subscriber's client checks it (it names the subscriber only in the signed body).
  const statuses = V.frames.filter((f) => f.fields.type === 'ACCOUNT_STATUS');
  assert.equal(statuses.length, 4);
  for (const v of statuses) {
    const f = frameOf(v) as Extract<MailboxFrame, { type: 'ACCOUNT_STATUS' }>;
    const st = V.statements.find((s) => s.kind === 'accountStatus' && s.signature === v.fields.signature)!;
    const subscriber = h(st.fields.subscriber as string);
    assert.ok(verify(provider, DOMAINS.accountStatus, accountStatusBody(provider, subscriber, f), f.sig), `${v.name}: status`);
    const other = hexOf(subscriber) === hexOf(ids.alice.identityKey) ? ids.bob : ids.alice;
    assert.ok(!verify(provider, DOMAINS.accountStatus, accountStatusBody(provider, other.identityKey, f), f.sig), `${v.name}: only for its subscriber`);
  }
});

test('vectors: every frame type both ways, encoded byte for byte and decoded back; the other direction refuses it', () => {
  const types = new Set(V.frames.map((f) => f.fields.type));
  assert.deepEqual([...types].sort(), [
    'SUBSCRIBE', 'CREATE_QUEUE', 'REMOVE_QUEUE', 'DEPOSIT', 'FETCH', 'ACK', 'ACCOUNT', 'WATCH',
    'TERMS', 'OK', 'DEPOSITED', 'HELD', 'ACKED', 'ACCOUNT_STATUS', 'NOTIFY', 'ERROR',
  ].sort(), 'all eight requests and eight answers');
  for (const v of V.frames) {
    const f = frameOf(v);
    const bytes = frameBytes(v);
    assert.equal(hexOf(encodeMailboxFrame(f, MAX)), hexOf(bytes), `${v.name}: encode`);
    assert.deepEqual(decodeMailboxFrame(bytes, MAX), f, `${v.name}: decode`);
    assert.deepEqual(decoders[v.direction](bytes, MAX), f, `${v.name}: decode as ${v.direction}`);
    refused(() => decoders[other(v.direction)](bytes, MAX), 'MALFORMED', `${v.name}: decoded as ${other(v.direction)}`);
  }
  // Zero means none, both ways.
  const byName = (n: string) => decodeMailboxFrame(frameBytes(V.frames.find((f) => f.name === n)!), MAX);
  assert.equal((byName('SUBSCRIBE without a tag (zero tag is null)') as { tag: unknown }).tag, null);
  assert.equal((byName('CREATE_QUEUE public (zero write hash is null)') as { writeHash: unknown }).writeHash, null);
  assert.equal((byName('DEPOSIT public (zero write capability is null)') as { writeCap: unknown }).writeCap, null);
});

test('vectors: every invalid frame is refused with its code (MALFORMED or BAD_SIZE)', () => {
  const source = new Map(V.frames.map((f) => [f.name, f]));
  const seen = { MALFORMED: 0, BAD_SIZE: 0 };
  for (const c of V.invalidFrames) {
    let bytes: Uint8Array;
    if (c.bytes !== undefined) bytes = h(c.bytes);
    else {
      const m = c.mutation!;
      const of = source.get(m.of);
      assert.ok(of, `${c.name}: mutation of unknown frame ${m.of}`);
      assert.equal(of.direction, c.direction, `${c.name}: direction`);
      bytes = Uint8Array.from(frameBytes(of));
      if (m.truncate !== undefined) bytes = bytes.subarray(0, m.truncate);
      if (m.set) bytes[m.set[0]] = m.set[1];
      if (m.append !== undefined) {
        const tail = h(m.append);
        const longer = new Uint8Array(bytes.length + tail.length);
        longer.set(bytes);
        longer.set(tail, bytes.length);
        bytes = longer;
      }
    }
    refused(() => decoders[c.direction](bytes, MAX), c.expect, c.name);
    seen[c.expect]++;
  }
  assert.ok(seen.MALFORMED > 100 && seen.BAD_SIZE >= 5, JSON.stringify(seen));
  // WATCH and NOTIFY are among them: cut, trailing byte, and each sent the wrong way.
  const names = V.invalidFrames.map((c) => c.name);
  for (const want of [/^WATCH .*: cut to/, /^NOTIFY .*: cut to/, /^WATCH .*: trailing byte/, /^NOTIFY .*: trailing byte/, /^NOTIFY .* sent to a provider/, /^WATCH .* sent to a client/]) {
    assert.ok(names.some((n) => want.test(n)), `an invalid frame matching ${want}`);
  }
});

test('vectors: the encoder refuses an envelope over maxEnvelope (BAD_SIZE), as the decoder does', () => {
  const dep = V.frames.find((f) => f.name === 'DEPOSIT of exactly maxEnvelope bytes')!;
  const f = frameOf(dep) as Extract<MailboxFrame, { type: 'DEPOSIT' }>;
  assert.equal(f.envelope.length, MAX);
  assert.throws(() => encodeMailboxFrame({ ...f, envelope: new Uint8Array(MAX + 1) }, MAX), (e: unknown) => e instanceof ProviderError && e.code === 'BAD_SIZE');
});
