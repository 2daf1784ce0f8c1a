import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { TronWeb, utils } from 'tronweb';
import { ManualClock } from '../../src/clock.js';
import { toHex } from '../../src/bytes.js';
import {
  cryptoReady, encodeRotation, generateIdentity, signRegistryRecord, signRotation,
  type Identity, type OnionAddress,
} from '../../src/crypto/index.js';
import {
  MAX_METADATA_LENGTH, RegistryError, TtlCache, comparePin, decodeMetadata, encodeMetadata, isValidName, normalizeName,
  parseTronAddress, verifyRecord, type RawRecord, type VerifiedRecord,
} from '../../src/registry/index.js';
import { calls, commitmentOf, decodeLookup, decodeRevert } from '../../src/registry/abi.js';
import { addressOfPrivateKey } from '../../src/registry/address.js';

before(cryptoReady);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RegistryError, `expected RegistryError, got ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

const OWNER = parseTronAddress('TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t')!;
const CONTRACT = parseTronAddress('41' + '22'.repeat(20))!;
const CTX = { chainId: 1337n, contract: CONTRACT.bytes };

function rawRecord(id: Identity, opts: { name?: string; version?: number; mailboxes?: string; signer?: Identity } = {}): RawRecord {
  const name = opts.name ?? 'alice';
  const version = opts.version ?? 1;
  const mailboxes = opts.mailboxes ?? '';
  const signature = signRegistryRecord(opts.signer ?? id, { name, owner: OWNER.bytes, mailboxes, version, chainId: CTX.chainId, contract: CTX.contract });
  return { name, owner: OWNER.bytes, identityKey: id.identityKey, encryptionKey: id.encryptionKey, mailboxes, version, signature };
}

function verified(id: Identity, opts: Parameters<typeof rawRecord>[1] = {}): VerifiedRecord {
  return verifyRecord(rawRecord(id, opts), CTX);
}

// ---- names --------------------------------------------------------------------------------------

test('normalizeName: trims, lower-cases, accepts the contract rule', () => {
  assert.equal(normalizeName('  Alice '), 'alice');
  assert.equal(normalizeName('a'), 'a');
  assert.equal(normalizeName('0'), '0');
  assert.equal(normalizeName('bob-2'), 'bob-2');
  assert.equal(normalizeName('a--b'), 'a--b');
  assert.equal(normalizeName('x'.repeat(64)), 'x'.repeat(64));
});

test('normalizeName: rejects empty, too long, edge hyphens, other characters, non-ASCII look-alikes', () => {
  for (const bad of ['', '   ', 'x'.repeat(65), '-a', 'a-', '-', 'a_b', 'a.b', 'a b', 'alice!', 'ålice', 'é', '\u212Aelvin', 'a\u0000', 'аlice' /* Cyrillic а */]) {
    assert.equal(codeOf(() => normalizeName(bad)), 'NAME_INVALID', JSON.stringify(bad));
    assert.equal(isValidName(bad), false, JSON.stringify(bad));
  }
  assert.equal(isValidName('Alice'), true);
});

// ---- metadata -----------------------------------------------------------------------------------

test('metadata: empty, mailboxes only, rotation only, both; round trip and canonical form', () => {
  const m1 = generateIdentity().onion;
  const m2 = generateIdentity().onion;
  const oldId = generateIdentity();
  const newId = generateIdentity();
  const rot = signRotation(oldId, newId, 1_700_000_000_000);

  assert.equal(encodeMetadata({}), '');
  assert.deepEqual(decodeMetadata(''), { mailboxes: [], rotation: null, hidden: false });

  const s1 = encodeMetadata({ mailboxes: [m1, m2] });
  assert.equal(s1, `m=${m1},${m2}`);
  assert.deepEqual(decodeMetadata(s1), { mailboxes: [m1, m2], rotation: null, hidden: false });

  const s2 = encodeMetadata({ rotation: rot });
  assert.match(s2, /^r=[A-Za-z0-9_-]+$/);
  assert.deepEqual(toHex(encodeRotation(decodeMetadata(s2).rotation!)), toHex(encodeRotation(rot)));

  const s3 = encodeMetadata({ mailboxes: [m1], rotation: rot });
  assert.equal(s3, `m=${m1};r=${Buffer.from(encodeRotation(rot)).toString('base64url')}`);
  const d3 = decodeMetadata(s3);
  assert.deepEqual(d3.mailboxes, [m1]);
  assert.ok(d3.rotation);
  assert.ok(s3.length < MAX_METADATA_LENGTH);

  // Upper-case input is accepted by the encoder and written canonically.
  assert.equal(encodeMetadata({ mailboxes: [m1.toUpperCase() as OnionAddress] }), `m=${m1}`);
  // Unknown single-letter parts are reserved for later versions and skipped.
  assert.deepEqual(decodeMetadata(`m=${m1};x=future-stuff`).mailboxes, [m1]);

  // Hidden: between the mailboxes and the rotation; a reader that predates it skips it.
  const s4 = encodeMetadata({ mailboxes: [m1], hidden: true, rotation: rot });
  assert.match(s4, new RegExp(`^m=${m1};h=1;r=`));
  assert.equal(decodeMetadata(s4).hidden, true);
  assert.equal(decodeMetadata(s3).hidden, false);
  for (const [s, what] of [[`h=1;m=${m1}`, 'h before m'], [`r=${s4.split(';r=')[1]};h=1`, 'h after r'], ['h=0', 'h not 1'], ['h=', 'h empty']] as const) {
    assert.throws(() => decodeMetadata(s), (err: unknown) => err instanceof RegistryError && err.code === 'BAD_RECORD', what);
  }
});

test('metadata: malformed strings are BAD_RECORD', () => {
  const m1 = generateIdentity().onion;
  const rot = Buffer.from(encodeRotation(signRotation(generateIdentity(), generateIdentity(), 1))).toString('base64url');
  const nine = Array.from({ length: 9 }, () => generateIdentity().onion);
  const cases: [string, string][] = [
    ['m=', 'empty mailbox list'],
    [`m=${m1},`, 'trailing comma'],
    [`m=${m1};`, 'trailing semicolon'],
    [`;m=${m1}`, 'leading semicolon'],
    [`m=${m1.toUpperCase()}`, 'non-canonical onion'],
    [`m=${m1.slice(0, -6)}`, 'onion without .onion'],
    [`m=${m1.replace(/^./, m1[0] === 'a' ? 'b' : 'a')}`, 'checksum mismatch'],
    [`m=${m1},${m1}`, 'duplicate'],
    [`m=${nine.join(',')}`, 'more than 8'],
    [`m=${m1};m=${m1}`, 'key twice'],
    [`r=${rot};m=${m1}`, 'r before m'],
    ['m', 'no equals sign'],
    ['mm=x', 'multi-letter key'],
    ['M=x', 'upper-case key'],
    ['r=', 'empty rotation'],
    ['r=!!!', 'not base64url'],
    [`r=${rot}=`, 'padding'],
    [`r=${rot.slice(0, -4)}`, 'truncated rotation'],
    [`r=${Buffer.from('hello').toString('base64url')}`, 'not a rotation'],
    [`m=${m1} `, 'space'],
    ['m=é', 'non-ASCII'],
    ['x='.padEnd(MAX_METADATA_LENGTH + 1, 'a'), 'too long'],
  ];
  for (const [s, why] of cases) assert.equal(codeOf(() => decodeMetadata(s)), 'BAD_RECORD', why);
  assert.equal(codeOf(() => encodeMetadata({ mailboxes: ['nope.onion' as OnionAddress] })), 'BAD_RECORD');
  assert.equal(codeOf(() => encodeMetadata({ mailboxes: nine })), 'BAD_RECORD');
  assert.equal(codeOf(() => encodeMetadata({ mailboxes: [m1, m1] })), 'BAD_RECORD');
});

// ---- record verification ------------------------------------------------------------------------

test('verifyRecord: accepts a signed record, derives the onion, decodes metadata', () => {
  const id = generateIdentity();
  const mbox = generateIdentity().onion;
  const rec = verified(id, { mailboxes: encodeMetadata({ mailboxes: [mbox] }), version: 3 });
  assert.equal(rec.onion, id.onion);
  assert.equal(rec.owner, 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t');
  assert.equal(rec.ownerHex, '41a614f803b6fd780986a42c78ec9c7f77e6ded13c');
  assert.deepEqual(rec.mailboxes, [mbox]);
  assert.equal(rec.version, 3);
  assert.equal(rec.chainId, 1337n);
  assert.equal(rec.contract, CONTRACT.base58);
});

test('verifyRecord: any change to a signed field, or a foreign signature, is BAD_RECORD', () => {
  const id = generateIdentity();
  const other = generateIdentity();
  const raw = rawRecord(id);
  const tamper: [string, RawRecord][] = [
    ['name', { ...raw, name: 'alicf' }],
    ['owner', { ...raw, owner: parseTronAddress('41' + '33'.repeat(20))!.bytes }],
    ['identity key', { ...raw, identityKey: other.identityKey }],
    ['encryption key', { ...raw, encryptionKey: other.encryptionKey }],
    ['mailboxes', { ...raw, mailboxes: encodeMetadata({ mailboxes: [other.onion] }) }],
    ['version', { ...raw, version: 2 }],
    ['signature by another key', rawRecord(id, { signer: other })],
    ['short signature', { ...raw, signature: raw.signature.subarray(0, 63) }],
    ['non-canonical name', rawRecord(id, { name: 'Alice' })],
  ];
  for (const [why, r] of tamper) assert.equal(codeOf(() => verifyRecord(r, CTX)), 'BAD_RECORD', why);
  assert.equal(codeOf(() => verifyRecord(raw, { ...CTX, chainId: 1n })), 'BAD_RECORD', 'other chain');
  assert.equal(codeOf(() => verifyRecord(raw, { ...CTX, contract: OWNER.bytes })), 'BAD_RECORD', 'other contract');
});

test('verifyRecord: a rotation statement must lead to the record key and carry both signatures', () => {
  const oldId = generateIdentity();
  const newId = generateIdentity();
  const good = signRotation(oldId, newId, 5);
  assert.ok(verified(newId, { mailboxes: encodeMetadata({ rotation: good }) }).rotation);
  // Statement for another key.
  assert.equal(codeOf(() => verified(generateIdentity(), { mailboxes: encodeMetadata({ rotation: good }) })), 'BAD_RECORD');
  // Broken old signature.
  const forged = { ...good, oldSignature: good.oldSignature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
  assert.equal(codeOf(() => verified(newId, { mailboxes: encodeMetadata({ rotation: forged }) })), 'BAD_RECORD');
});

// ---- pinning policy -----------------------------------------------------------------------------

test('comparePin: new, same, updated, rollback, equivocation', () => {
  const id = generateIdentity();
  const v2 = verified(id, { version: 2 });
  assert.deepEqual(comparePin(null, v2), { kind: 'new' });
  const pin = { identityKey: id.identityKey, encryptionKey: id.encryptionKey, version: 2 };
  assert.deepEqual(comparePin(pin, v2), { kind: 'same' });
  // New encryption key and mailboxes at a higher version, signed by the same identity.
  const rekeyed = { ...id, encryptionKey: generateIdentity().encryptionKey };
  const v3 = verified(rekeyed, { version: 3, mailboxes: encodeMetadata({ mailboxes: [generateIdentity().onion] }) });
  assert.deepEqual(comparePin(pin, v3), { kind: 'updated' });
  const rollback = comparePin({ ...pin, version: 5 }, v3);
  assert.equal(rollback.kind, 'conflict');
  assert.match((rollback as { reason: string }).reason, /rollback/);
  const twoFaced = comparePin({ ...pin, version: 3 }, v3);
  assert.equal(twoFaced.kind, 'conflict');
});

test('comparePin: rotated with a statement signed by the pinned key; conflict without or with a forged one', () => {
  const oldId = generateIdentity();
  const newId = generateIdentity();
  const pin = { identityKey: oldId.identityKey, encryptionKey: oldId.encryptionKey, version: 4 };

  const rot = signRotation(oldId, newId, 10);
  const rotated = comparePin(pin, verified(newId, { version: 5, mailboxes: encodeMetadata({ rotation: rot }) }));
  assert.equal(rotated.kind, 'rotated');
  assert.equal(toHex((rotated as { rotation: { newIdentity: Uint8Array } }).rotation.newIdentity), toHex(newId.identityKey));

  const bare = comparePin(pin, verified(newId, { version: 5 }));
  assert.equal(bare.kind, 'conflict');
  assert.match((bare as { reason: string }).reason, /without a rotation statement/);

  // An attacker rotates from a key they own: well-formed statement, but not from the pinned key.
  const attacker = generateIdentity();
  const foreign = signRotation(attacker, newId, 10);
  const viaForeign = comparePin(pin, verified(newId, { version: 5, mailboxes: encodeMetadata({ rotation: foreign }) }));
  assert.equal(viaForeign.kind, 'conflict');

  // A forged statement (claims the pinned key as old, signature not by it) never reaches comparePin
  // through verifyRecord; a record built by hand is still refused.
  const forged = { ...foreign, oldIdentity: oldId.identityKey };
  const handBuilt = { ...verified(newId, { version: 5 }), rotation: forged };
  assert.equal(comparePin(pin, handBuilt).kind, 'conflict');
  // A statement that leads to some other key.
  const elsewhere = { ...verified(generateIdentity(), { version: 5 }), rotation: rot };
  assert.equal(comparePin(pin, elsewhere).kind, 'conflict');
});

// ---- cache --------------------------------------------------------------------------------------

test('TtlCache: entries expire after the TTL on the injected clock; delete; size bound', () => {
  const clock = new ManualClock();
  const c = new TtlCache<number>({ clock, ttlMs: 1000, maxEntries: 2 });
  c.set('a', 1);
  clock.advance(999);
  assert.equal(c.get('a'), 1);
  clock.advance(1);
  assert.equal(c.get('a'), undefined);
  c.set('a', 1);
  c.set('b', 2);
  c.set('c', 3);
  assert.equal(c.size, 2);
  assert.equal(c.get('a'), undefined, 'oldest evicted');
  c.delete('b');
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('c'), 3);
  const off = new TtlCache<number>({ clock, ttlMs: 0 });
  off.set('x', 1);
  assert.equal(off.get('x'), undefined);
});

// ---- addresses and ABI --------------------------------------------------------------------------

test('parseTronAddress: base58 and hex agree with tronweb; bad checksums and prefixes refused', () => {
  for (let i = 0; i < 20; i++) {
    const hex = `41${toHex(crypto.getRandomValues(new Uint8Array(20)))}`;
    const p = parseTronAddress(hex)!;
    assert.equal(p.base58, TronWeb.address.fromHex(hex));
    assert.equal(parseTronAddress(p.base58)!.hex, hex);
  }
  assert.equal(parseTronAddress('T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb')!.hex, '41' + '00'.repeat(20));
  assert.equal(parseTronAddress('TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u'), null, 'checksum');
  assert.equal(parseTronAddress('42' + '00'.repeat(20)), null, 'prefix');
  assert.equal(parseTronAddress('alice'), null);
});

test('addressOfPrivateKey (node:crypto + keccak, no tronweb) agrees with tronweb; non-keys refused', () => {
  for (let i = 0; i < 20; i++) {
    const key = toHex(crypto.getRandomValues(new Uint8Array(32)));
    assert.equal(addressOfPrivateKey(key)?.base58, TronWeb.address.fromPrivateKey(key), key);
  }
  for (const bad of ['', '00'.repeat(32), 'ff'.repeat(32), 'zz'.repeat(32), '11'.repeat(31)]) assert.equal(addressOfPrivateKey(bad), null, bad);
});

test('ABI: commitment matches the contract formula, lookup decoding, revert reasons', () => {
  const secret = new Uint8Array(32).fill(9);
  const expected = utils.ethersUtils.keccak256(
    utils.ethersUtils.concat([utils.ethersUtils.toUtf8Bytes('alice'), `0x${OWNER.hex.slice(2)}`, secret]),
  );
  assert.equal(`0x${toHex(commitmentOf('alice', OWNER.bytes, secret))}`, expected);
  assert.match(calls.lookup('alice').parameter, /^[0-9a-f]+$/);

  const coder = new utils.ethersUtils.AbiCoder();
  const types = ['address', 'bytes32', 'bytes32', 'string', 'uint64', 'bytes'];
  const absent = coder.encode(types, [`0x${'00'.repeat(20)}`, `0x${'00'.repeat(32)}`, `0x${'00'.repeat(32)}`, '', 0n, '0x']).slice(2);
  assert.equal(decodeLookup('alice', absent), null);
  const present = coder.encode(types, [`0x${OWNER.hex.slice(2)}`, `0x${'11'.repeat(32)}`, `0x${'22'.repeat(32)}`, 'm=x', 7n, `0x${'33'.repeat(64)}`]).slice(2);
  const r = decodeLookup('alice', present)!;
  assert.equal(toHex(r.owner), OWNER.hex);
  assert.equal(r.version, 7);
  assert.equal(r.mailboxes, 'm=x');
  assert.equal(r.signature.length, 64);

  const errorData = `08c379a0${coder.encode(['string'], ['NAME_TAKEN']).slice(2)}`;
  assert.equal(decodeRevert(errorData), 'NAME_TAKEN');
  assert.equal(decodeRevert(`4e487b71${coder.encode(['uint256'], [0x11n]).slice(2)}`), 'Panic(0x11)');
  assert.equal(decodeRevert(''), null);
  assert.equal(decodeRevert('08c379a0dead'), null);
});
