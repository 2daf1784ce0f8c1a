/**
 * Bundles kept at a mailbox provider (PROTOCOL.md §14.8): the PUT_BUNDLE / GET_BUNDLE / BUNDLE_KEPT /
 * BUNDLE codecs (round trips, every cut refused, bundle lengths and counts checked), and the
 * client against the service over the in-memory pair with a real ProviderStore file: a signed
 * PUT (refused when foreign-signed, stale, for a bundle of another identity or one that does not
 * verify, or before subscribing), each one-time prekey handed out once, none left → the bundle
 * alone, newest bundle kept, replace, the per-user prekey rate and the provider-wide GET rate.
 */
import { afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady, generateIdentity, type Identity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import {
  MailboxClient, MailboxErrorCode, MailboxService, ProviderError, ProviderStore, decodeMailboxFrame, encodeMailboxFrame, type MailboxFrame,
  type MailboxServiceLimits,
} from '../../src/provider/index.js';
import { decodeBundleAnswer, newPqPrekey, newSignedPrekey, signBundle } from '../../src/session/index.js';
import { createMemoryPair, type MessageChannel } from '../../src/transport/index.js';

const MAX = 262_144;
let provider: Identity;
let bob: Identity;
let mallory: Identity;
let dir: string;
let clock: ManualClock;
let store: ProviderStore;
let service: MailboxService | undefined;
let client: MailboxClient;
let channels: MessageChannel[] = [];

before(async () => {
  await cryptoReady();
  provider = generateIdentity();
  bob = generateIdentity();
  mallory = generateIdentity();
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionpost-bundles-'));
  clock = new ManualClock(Date.UTC(2026, 10, 30));
  store = new ProviderStore({ path: join(dir, 'provider.db'), logger: silentLogger(), isEnvelopeSize: () => true });
});
afterEach(() => {
  service?.close();
  service = undefined;
  for (const c of channels) c.destroy();
  channels = [];
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function connect(limits: Partial<MailboxServiceLimits> = {}): MailboxClient {
  service ??= new MailboxService({ identity: provider, store, clock, logger: silentLogger(), limits: { maxEnvelope: MAX, ...limits } });
  const [a, b] = createMemoryPair({ clock });
  channels.push(a, b);
  service.serve(b);
  client = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX });
  return client;
}

function bundleOf(id: Identity, now = clock.now(), mailboxes = [provider.onion]): Uint8Array {
  return signBundle(id, { signedPrekey: newSignedPrekey(1), pqPrekey: newPqPrekey(1), now, mailboxes }).bytes;
}
const prekeys = (first: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: first + i, public: new Uint8Array(32).fill((first + i) & 0xff) }));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ProviderError, String(err));
    return err.code === 'REMOTE' ? Object.entries(MailboxErrorCode).find(([, v]) => v === err.remoteCode)![0] : err.code;
  }
  return 'ok';
}

test('codec: PUT_BUNDLE, GET_BUNDLE, BUNDLE_KEPT and BUNDLE round-trip; every cut and a trailing byte are refused; lengths and counts are checked', () => {
  const bundle = new Uint8Array(1370 + 63).fill(9);
  const frames: MailboxFrame[] = [
    { type: 'PUT_BUNDLE', id: 1, identity: new Uint8Array(32).fill(1), time: 5, replace: true, bundle, prekeys: prekeys(7, 3), sig: new Uint8Array(64).fill(2) },
    { type: 'PUT_BUNDLE', id: 2, identity: new Uint8Array(32).fill(1), time: 5, replace: false, bundle: new Uint8Array(1370), prekeys: [], sig: new Uint8Array(64) },
    { type: 'GET_BUNDLE', id: 3, identity: new Uint8Array(32).fill(4) },
    { type: 'BUNDLE_KEPT', id: 4, prekeys: 20 },
    { type: 'BUNDLE', id: 5, bundle, prekey: { id: 0xfffffffe, public: new Uint8Array(32).fill(6) } },
    { type: 'BUNDLE', id: 6, bundle, prekey: null },
  ];
  for (const f of frames) {
    const bytes = encodeMailboxFrame(f, MAX);
    assert.deepEqual(decodeMailboxFrame(bytes, MAX), f);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeMailboxFrame(bytes.subarray(0, n), MAX), (e: unknown) => e instanceof ProviderError && e.code === 'MALFORMED', `${f.type} cut at ${n}`);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => decodeMailboxFrame(longer, MAX), /trailing/);
  }
  const malformed = (f: MailboxFrame) => assert.throws(() => encodeMailboxFrame(f, MAX), (e: unknown) => e instanceof ProviderError && e.code === 'MALFORMED');
  malformed({ type: 'BUNDLE', id: 1, bundle: new Uint8Array(1371), prekey: null });
  malformed({ type: 'BUNDLE', id: 1, bundle: new Uint8Array(1370 + 63 * 9), prekey: null });
  malformed({ ...(frames[0] as Extract<MailboxFrame, { type: 'PUT_BUNDLE' }>), prekeys: prekeys(1, 101) });
  // Decoded from bytes: an unknown flag, a bundle length that is no bundle's, two prekeys in a BUNDLE.
  const put = encodeMailboxFrame(frames[0]!, MAX);
  const flags = Uint8Array.from(put);
  flags[6 + 32 + 8] = 2;
  assert.throws(() => decodeMailboxFrame(flags, MAX), /flags/);
  const len = Uint8Array.from(put);
  len[6 + 32 + 8 + 1 + 1] = len[6 + 32 + 8 + 1 + 1]! + 1;
  assert.throws(() => decodeMailboxFrame(len, MAX), /bundle of/);
  const two = encodeMailboxFrame(frames[5]!, MAX);
  two[two.length - 1] = 2;
  assert.throws(() => decodeMailboxFrame(two, MAX), /more than one/);
});

test('PUT_BUNDLE is signed by the subscriber for this provider and time; the bundle must be its own, valid one', async () => {
  const c = connect();
  const bundle = bundleOf(bob);
  assert.equal(await code(c.putBundle(bob, bundle, prekeys(1, 3), false)), 'NOT_SUBSCRIBED');
  await c.subscribe(bob, null);
  assert.equal(await c.putBundle(bob, bundle, prekeys(1, 3), false), 3);
  // Mallory signs a PUT of her own bundle under bob's identity: BAD_SIGNATURE (the request names bob).
  await c.subscribe(mallory, null);
  assert.equal(await code(c.putBundle({ ...mallory, identityKey: bob.identityKey }, bundleOf(mallory), [], true)), 'BAD_SIGNATURE');
  // Mallory's own PUT carrying bob's bundle: not hers.
  assert.equal(await code(c.putBundle(mallory, bundle, [], false)), 'BAD_BUNDLE');
  // A bundle whose signature does not verify, an expired one.
  const forged = Uint8Array.from(bundleOf(mallory));
  forged[40] = forged[40]! ^ 1;
  assert.equal(await code(c.putBundle(mallory, forged, [], false)), 'BAD_BUNDLE');
  const old = signBundle(mallory, { signedPrekey: newSignedPrekey(1), pqPrekey: newPqPrekey(1), now: clock.now() - 10_000, lifetimeMs: 5_000 }).bytes;
  assert.equal(await code(c.putBundle(mallory, old, [], false)), 'BAD_BUNDLE');
  // Signed for another time: STALE (10 min of skew).
  const stale = new MailboxClient({ channel: channels[0]!, providerKey: provider.identityKey, clock: new ManualClock(clock.now() - 11 * 60_000), maxEnvelope: MAX });
  assert.equal(await code(stale.putBundle(bob, bundle, [], false)), 'STALE');
  assert.deepEqual(store.bundleStats(bob.identityKey), { prekeys: 3, fetched: 0 });
});

test('GET_BUNDLE hands each one-time prekey out once, lowest first; none left → the bundle alone; no bundle → NO_BUNDLE', async () => {
  const c = connect();
  assert.equal(await code(c.getBundle(bob.identityKey)), 'NO_BUNDLE');
  await c.subscribe(bob, null);
  assert.equal(await code(c.getBundle(bob.identityKey)), 'NO_BUNDLE', 'subscribed but no bundle put');
  const bundle = bundleOf(bob);
  await c.putBundle(bob, bundle, prekeys(10, 3), false);
  const got: (number | null)[] = [];
  for (let i = 0; i < 5; i++) {
    const a = decodeBundleAnswer(await connect().getBundle(bob.identityKey));
    assert.deepEqual(a.bundle.bytes, bundle);
    got.push(a.oneTimePrekey?.id ?? null);
    if (a.oneTimePrekey) assert.deepEqual(a.oneTimePrekey.public, new Uint8Array(32).fill(a.oneTimePrekey.id));
  }
  assert.deepEqual(got, [10, 11, 12, null, null]);
  assert.deepEqual(store.bundleStats(bob.identityKey), { prekeys: 0, fetched: 5 });
  // A bundle that expired is not handed out.
  clock.advance(91 * 24 * 3600_000);
  assert.equal(await code(c.getBundle(bob.identityKey)), 'NO_BUNDLE');
});

test('the newest bundle is kept (an older PUT adds its prekeys but not its bundle); replace drops the held prekeys; the pool is capped', async () => {
  const c = connect();
  await c.subscribe(bob, null);
  const newer = bundleOf(bob);
  const older = bundleOf(bob, clock.now() - 60_000);
  assert.equal(await c.putBundle(bob, newer, prekeys(1, 2), false), 2);
  assert.equal(await c.putBundle(bob, older, prekeys(3, 1), true), 3, 'an older bundle replaces nothing');
  assert.deepEqual(decodeBundleAnswer(await c.getBundle(bob.identityKey)).bundle.bytes, newer);
  // The GET took prekey 1; 2 and 3 are held, and putting them again keeps them once.
  assert.equal(await c.putBundle(bob, newer, prekeys(2, 2), false), 2, 'an id held already is kept once');
  assert.equal(await c.putBundle(bob, newer, prekeys(100, 2), true), 2, 'replace: only the new ones');
  assert.equal(await c.putBundle(bob, newer, prekeys(200, 100), false), 100, 'capped at maxBundlePrekeys');
});

test('rates: past the per-user prekey burst a GET gets the bundle without one (prekeys stay); past the provider-wide rate, RATE_LIMITED', async () => {
  const c = connect({ prekeyBurst: 2, prekeysPerHour: 3600, bundleGetBurst: 4, bundleGetsPerSecond: 1 });
  await c.subscribe(bob, null);
  await c.putBundle(bob, bundleOf(bob), prekeys(1, 10), false);
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push(decodeBundleAnswer(await c.getBundle(bob.identityKey)).oneTimePrekey?.id ?? null);
  assert.deepEqual(ids, [1, 2, null, null]);
  const limited = await c.getBundle(bob.identityKey).catch((e: unknown) => e);
  assert.ok(limited instanceof ProviderError && limited.remoteCode === MailboxErrorCode.RATE_LIMITED && limited.retryable);
  clock.advance(1_000);
  assert.equal(decodeBundleAnswer(await c.getBundle(bob.identityKey)).oneTimePrekey?.id, 3, 'a second later: one more prekey and one more GET');
  assert.equal(store.bundleStats(bob.identityKey)!.prekeys, 7);
});
