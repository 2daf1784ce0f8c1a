/**
 * The stored form of a SessionState. It never leaves the node (nothing else has to read it), so it
 * is a fixed-size binary layout with a format byte, not part of PROTOCOL.md:
 *
 *   off  size  field
 *   0    1     format = 1
 *   1    1     role: 1 initiator, 2 responder
 *   2    1     flags: bit0 dhRemote, bit1 sendChain, bit2 recvChain, bit3 headerKeySend, bit4 headerKeyRecv
 *   3    16    session id
 *   19   32    initiator identity key
 *   51   32    responder identity key
 *   83   32    root key
 *   115  32    our ratchet secret
 *   147  32    our ratchet public key
 *   179  32×5  dhRemote, sendChain, recvChain, headerKeySend, headerKeyRecv (zeros when absent)
 *   339  32×4  nextHeaderKeySend, nextHeaderKeyRecv, sendTagKey, recvTagKey
 *   467  4×3   ns, nr, pn (u32)
 *   479  8     sendCounter (u64)
 *   487  8     recvHighest + 1 (u64)
 *   495        end
 *
 * It holds secrets: the store keeps it in the node's 0600 database, like the other key material.
 */
import { ByteReader, ByteWriter } from '../bytes.js';
import type { IdentityKey } from '../crypto/index.js';
import { SessionError } from './errors.js';
import { ZERO32 } from './primitives.js';
import type { SessionState } from './ratchet.js';

export const STATE_FORMAT = 1;
export const STATE_BYTES = 495;

const OPTIONAL = ['dhRemote', 'sendChain', 'recvChain', 'headerKeySend', 'headerKeyRecv'] as const;

export function encodeState(s: SessionState): Uint8Array {
  let flags = 0;
  OPTIONAL.forEach((f, i) => {
    if (s[f]) flags |= 1 << i;
  });
  const w = new ByteWriter()
    .u8(STATE_FORMAT).u8(s.role === 'initiator' ? 1 : 2).u8(flags)
    .bytes(s.id).bytes(s.initiatorIdentity).bytes(s.responderIdentity).bytes(s.rootKey).bytes(s.dhSelf.secret).bytes(s.dhSelf.public);
  for (const f of OPTIONAL) w.bytes(s[f] ?? ZERO32);
  w.bytes(s.nextHeaderKeySend).bytes(s.nextHeaderKeyRecv).bytes(s.sendTagKey).bytes(s.recvTagKey)
    .u32(s.ns).u32(s.nr).u32(s.pn).u64(s.sendCounter).u64(s.recvHighest + 1);
  const out = w.finish();
  if (out.length !== STATE_BYTES) throw new SessionError('BAD_STATE', `encoded session state is ${out.length} bytes, not ${STATE_BYTES}`);
  return out;
}

export function decodeState(bytes: Uint8Array): SessionState {
  const r = new ByteReader(bytes, (what) => new SessionError('BAD_STATE', `bad session state: ${what}`));
  const format = r.u8('format');
  if (format !== STATE_FORMAT) throw new SessionError('BAD_STATE', `session state format ${format} is not supported`);
  const roleCode = r.u8('role');
  if (roleCode !== 1 && roleCode !== 2) throw new SessionError('BAD_STATE', `bad session state: role ${roleCode}`);
  const flags = r.u8('flags');
  const key = (what: string) => Uint8Array.from(r.bytes(32, what));
  const id = Uint8Array.from(r.bytes(16, 'id'));
  const initiatorIdentity = key('initiator identity') as IdentityKey;
  const responderIdentity = key('responder identity') as IdentityKey;
  const rootKey = key('root key');
  const dhSelf = { secret: key('ratchet secret'), public: key('ratchet public key') };
  const opt = OPTIONAL.map((f, i) => {
    const v = key(f);
    return flags & (1 << i) ? v : null;
  });
  const s: SessionState = {
    role: roleCode === 1 ? 'initiator' : 'responder',
    id, initiatorIdentity, responderIdentity, rootKey, dhSelf,
    dhRemote: opt[0]!, sendChain: opt[1]!, recvChain: opt[2]!, headerKeySend: opt[3]!, headerKeyRecv: opt[4]!,
    nextHeaderKeySend: key('next header key (send)'),
    nextHeaderKeyRecv: key('next header key (receive)'),
    sendTagKey: key('send tag key'),
    recvTagKey: key('receive tag key'),
    ns: r.u32('ns'), nr: r.u32('nr'), pn: r.u32('pn'),
    sendCounter: r.u64('send counter'),
    recvHighest: r.u64('receive counter') - 1,
  };
  r.end('session state');
  return s;
}
