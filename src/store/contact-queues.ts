/**
 * Contact queues (store migration v16; issue 11, item 3; PROTOCOL.md §9.2 kind 4 and §14.2): the
 * private queue we make at each of our providers for each contact, so that only that contact can
 * deposit there, and the queues contacts handed us for the same purpose.
 *
 * Every method joins an open `store.batch()`; outside one each is its own transaction.
 */
import type { Database } from 'better-sqlite3';

/** A queue at a provider with the capability that writes to it (ours for a contact, or one a peer handed us). */
export interface QueueAt {
  provider: string;
  /** 16 bytes. */
  queue: Uint8Array;
  /** 32 bytes. */
  writeCap: Uint8Array;
}

export interface ContactQueueStore {
  /** The queues we made for `peerIdentity`, by provider onion. */
  ours(peerIdentity: string): QueueAt[];
  /** Every queue we made at `provider` (what we fetch and watch there besides the public queue). */
  oursAt(provider: string): (QueueAt & { peerIdentity: string })[];
  /** Records a queue we created at `q.provider` for `peerIdentity` (replacing one there). */
  addOurs(peerIdentity: string, q: QueueAt, now: number): void;
  /** The providers where we have contact queues. */
  providers(): string[];
  /** Forgets our queues at `provider` (it is no longer ours). Returns them, to remove there too. */
  removeOursAt(provider: string): (QueueAt & { peerIdentity: string })[];
  /** The handout body we last queued for `peerIdentity`, or null. */
  handedBody(peerIdentity: string): string | null;
  setHandedBody(peerIdentity: string, body: string, now: number): void;
  /** The queue `peerIdentity` handed us at `provider`, or null (then its public queue). */
  theirs(peerIdentity: string, provider: string): QueueAt | null;
  /**
   * Stores a handout of `peerIdentity`'s created at `handedAt`, replacing every queue it handed
   * before, unless a handout created later is stored already. Returns whether it was applied.
   */
  setTheirs(peerIdentity: string, queues: readonly QueueAt[], handedAt: number, now: number): boolean;
  /** Forgets the queue `peerIdentity` handed us at `provider` (the provider refused its capability). */
  forgetTheirs(peerIdentity: string, provider: string, now: number): void;
  /** The onion `peerIdentity` told us to dial (migration v17), or null: the one its identity key names. */
  theirOnion(peerIdentity: string): string | null;
  /** Stores a direct-onion message of `peerIdentity`'s created at `handedAt`, unless a later one is stored. */
  setTheirOnion(peerIdentity: string, onion: string | null, handedAt: number, now: number): boolean;
  /** The direct onion we last told `peerIdentity` ('' none), or null if we never did. */
  toldOnion(peerIdentity: string): string | null;
  setToldOnion(peerIdentity: string, onion: string, now: number): void;
}

interface Row { peer_identity: string; provider: string; queue: Buffer; write_cap: Buffer }
type Json = { provider: string; queue: string; writeCap: string };

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const fromRow = (r: Row) => ({ peerIdentity: r.peer_identity, provider: r.provider, queue: new Uint8Array(r.queue), writeCap: new Uint8Array(r.write_cap) });

export function createContactQueues(db: Database, run: <T>(what: string, fn: () => T) => T): ContactQueueStore {
  const s = {
    ours: db.prepare('SELECT * FROM contact_queues WHERE peer_identity = ? ORDER BY created_at, provider'),
    oursAt: db.prepare('SELECT * FROM contact_queues WHERE provider = ? ORDER BY created_at, peer_identity'),
    addOurs: db.prepare(`
      INSERT OR REPLACE INTO contact_queues (peer_identity, provider, queue, write_cap, created_at) VALUES (?, ?, ?, ?, ?)`),
    removeOursAt: db.prepare('DELETE FROM contact_queues WHERE provider = ? RETURNING *'),
    providers: db.prepare('SELECT DISTINCT provider FROM contact_queues ORDER BY provider'),
    handed: db.prepare('SELECT body FROM contact_queue_handouts WHERE peer_identity = ?'),
    setHanded: db.prepare(`
      INSERT INTO contact_queue_handouts (peer_identity, body, queued_at) VALUES (?, ?, ?)
      ON CONFLICT (peer_identity) DO UPDATE SET body = excluded.body, queued_at = excluded.queued_at`),
    theirs: db.prepare('SELECT queues, handed_at FROM peer_queues WHERE peer_identity = ?'),
    setTheirs: db.prepare(`
      INSERT INTO peer_queues (peer_identity, queues, handed_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (peer_identity) DO UPDATE SET queues = excluded.queues, handed_at = excluded.handed_at, updated_at = excluded.updated_at
      WHERE excluded.handed_at >= peer_queues.handed_at`),
    replaceTheirs: db.prepare('UPDATE peer_queues SET queues = ?, updated_at = ? WHERE peer_identity = ?'),
    theirOnion: db.prepare('SELECT onion FROM peer_onions WHERE peer_identity = ?'),
    setTheirOnion: db.prepare(`
      INSERT INTO peer_onions (peer_identity, onion, handed_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (peer_identity) DO UPDATE SET onion = excluded.onion, handed_at = excluded.handed_at, updated_at = excluded.updated_at
      WHERE excluded.handed_at >= peer_onions.handed_at`),
    toldOnion: db.prepare('SELECT onion FROM contact_onion_handouts WHERE peer_identity = ?'),
    setToldOnion: db.prepare(`
      INSERT INTO contact_onion_handouts (peer_identity, onion, queued_at) VALUES (?, ?, ?)
      ON CONFLICT (peer_identity) DO UPDATE SET onion = excluded.onion, queued_at = excluded.queued_at`),
  };
  const theirList = (peer: string): Json[] => {
    const r = s.theirs.get(peer) as { queues: string } | undefined;
    return r ? (JSON.parse(r.queues) as Json[]) : [];
  };
  return {
    ours: (peer) => run('contactQueues.ours', () => (s.ours.all(peer) as Row[]).map(fromRow)),
    oursAt: (provider) => run('contactQueues.oursAt', () => (s.oursAt.all(provider) as Row[]).map(fromRow)),
    addOurs: (peer, q, now) => run('contactQueues.addOurs', () => void s.addOurs.run(peer, q.provider, q.queue, q.writeCap, now)),
    providers: () => run('contactQueues.providers', () => (s.providers.all() as { provider: string }[]).map((r) => r.provider)),
    removeOursAt: (provider) => run('contactQueues.removeOursAt', () => (s.removeOursAt.all(provider) as Row[]).map(fromRow)),
    handedBody: (peer) => run('contactQueues.handedBody', () => (s.handed.get(peer) as { body: string } | undefined)?.body ?? null),
    setHandedBody: (peer, body, now) => run('contactQueues.setHandedBody', () => void s.setHanded.run(peer, body, now)),
    theirs: (peer, provider) => run('contactQueues.theirs', () => {
      const q = theirList(peer).find((x) => x.provider === provider);
      return q ? { provider, queue: bytes(q.queue), writeCap: bytes(q.writeCap) } : null;
    }),
    setTheirs: (peer, queues, handedAt, now) => run('contactQueues.setTheirs', () => {
      const json = JSON.stringify(queues.map((q): Json => ({ provider: q.provider, queue: hex(q.queue), writeCap: hex(q.writeCap) })));
      return s.setTheirs.run(peer, json, handedAt, now).changes > 0;
    }),
    theirOnion: (peer) => run('contactQueues.theirOnion', () => (s.theirOnion.get(peer) as { onion: string | null } | undefined)?.onion ?? null),
    setTheirOnion: (peer, onion, handedAt, now) => run('contactQueues.setTheirOnion', () => s.setTheirOnion.run(peer, onion, handedAt, now).changes > 0),
    toldOnion: (peer) => run('contactQueues.toldOnion', () => (s.toldOnion.get(peer) as { onion: string } | undefined)?.onion ?? null),
    setToldOnion: (peer, onion, now) => run('contactQueues.setToldOnion', () => void s.setToldOnion.run(peer, onion, now)),
    forgetTheirs: (peer, provider, now) => run('contactQueues.forgetTheirs', () => {
      const left = theirList(peer).filter((q) => q.provider !== provider);
      s.replaceTheirs.run(JSON.stringify(left), now, peer);
    }),
  };
}
