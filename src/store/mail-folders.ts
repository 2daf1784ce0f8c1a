/**
 * The mail bridge's IMAP folders (store migration v5), on the node's own database.
 *
 *   INBOX  every received message, and a bounce (DSN) for each outgoing message that failed,
 *          expired or was held; a bounce's ref is 'dsn:<message id>:<state>'
 *   Sent   every outgoing message. A copy shows the delivery state it was made in (`version`); when
 *          the message reaches delivered, failed, expired or held, the copy is replaced by a new one
 *          under a new UID, because IMAP never lets a message's content change under its UID
 *   Trash  what the user copied there
 *
 * UIDs are assigned in one transaction with the position in the message log (message_events.seq)
 * they were read up to, so each message and each state change is seen exactly once, across
 * restarts. A folder's uidvalidity never changes; UIDs are never reused.
 *
 * Flags: `\Seen` of a received message is the node's own read state (messages.read), so reading
 * in the web UI and in a mail client is the same thing; every other flag is the entry's own.
 */
import type { Database } from 'better-sqlite3';
import { StoreError } from './errors.js';

export const MAIL_FOLDER_NAMES = ['INBOX', 'Sent', 'Trash'] as const;
export type MailFolderName = (typeof MAIL_FOLDER_NAMES)[number];

export interface MailFolderInfo {
  name: MailFolderName;
  uidValidity: number;
  uidNext: number;
}

export interface MailFolderEntry {
  uid: number;
  /** A message id, or 'dsn:<message id>:<state>' for a bounce. */
  ref: string;
  /** Including `\Seen`. */
  flags: string[];
  /** Sent copies: the delivery state the copy shows. */
  version: string | null;
  addedAt: number;
}

export interface MailFolders {
  /**
   * Reads the message log since the last call: a new message gets a UID in its folder, a final
   * delivery state replaces the Sent copy and, for failed/expired/held, adds a bounce to INBOX.
   * Returns true when any folder changed.
   */
  sync(): boolean;
  info(folder: string): MailFolderInfo | null;
  list(): MailFolderInfo[];
  /** Entries by ascending UID. */
  entries(folder: MailFolderName): MailFolderEntry[];
  /** Replaces the entry's flags. NOT_FOUND when the entry is gone. */
  setFlags(folder: MailFolderName, uid: number, flags: readonly string[]): void;
  /** Copies entries (ascending UID) to `to`; returns [source uid, new uid] pairs. */
  copy(from: MailFolderName, uids: readonly number[], to: MailFolderName): [number, number][];
  /** Removes entries from the folder (the messages stay in the node). */
  expunge(folder: MailFolderName, uids: readonly number[]): void;
}

const SEEN = '\\Seen';
const FINAL = new Set(['delivered', 'failed', 'expired', 'held']);
const BOUNCE = new Set(['failed', 'expired', 'held']);
const SEQ_KEY = 'mail.eventSeq';
const PAGE = 1000;

export function createMailFolders(db: Database, o: { now: () => number; run: <T>(what: string, fn: () => T) => T }): MailFolders {
  const s = {
    folders: db.prepare('SELECT name, uidvalidity, uidnext FROM mail_folders ORDER BY rowid'),
    folder: db.prepare('SELECT name, uidvalidity, uidnext FROM mail_folders WHERE name = ?'),
    bump: db.prepare('UPDATE mail_folders SET uidnext = uidnext + 1 WHERE name = ? RETURNING uidnext - 1 AS uid'),
    insert: db.prepare('INSERT INTO mail_entries (folder, uid, ref, flags, version, added_at) VALUES (?, ?, ?, ?, ?, ?)'),
    entries: db.prepare(`
      SELECT e.uid, e.ref, e.flags, e.version, e.added_at, m.direction, m.read
      FROM mail_entries e LEFT JOIN messages m ON m.id = e.ref WHERE e.folder = ? ORDER BY e.uid`),
    entry: db.prepare(`
      SELECT e.uid, e.ref, e.flags, e.version, e.added_at, m.direction, m.read
      FROM mail_entries e LEFT JOIN messages m ON m.id = e.ref WHERE e.folder = ? AND e.uid = ?`),
    byRef: db.prepare('SELECT folder, uid, flags FROM mail_entries WHERE folder = ? AND ref = ?'),
    hasRef: db.prepare('SELECT 1 FROM mail_entries WHERE ref = ? LIMIT 1'),
    setFlags: db.prepare('UPDATE mail_entries SET flags = ? WHERE folder = ? AND uid = ?'),
    remove: db.prepare('DELETE FROM mail_entries WHERE folder = ? AND uid = ?'),
    setRead: db.prepare("UPDATE messages SET read = ? WHERE id = ? AND direction = 'in'"),
    log: db.prepare(`
      SELECT e.seq, e.message_id AS id, e.state, m.direction,
        (SELECT MIN(f.seq) FROM message_events f WHERE f.message_id = e.message_id) AS first
      FROM message_events e JOIN messages m ON m.id = e.message_id WHERE e.seq > ? AND m.control IS NULL ORDER BY e.seq LIMIT ?`),
    // Entries whose message was deleted from the node.
    orphans: db.prepare(`
      DELETE FROM mail_entries WHERE NOT EXISTS (SELECT 1 FROM messages m
        WHERE m.id = CASE WHEN mail_entries.ref GLOB 'dsn:*' THEN substr(mail_entries.ref, 5, 32) ELSE mail_entries.ref END)`),
    getSeq: db.prepare('SELECT value FROM kv WHERE key = ?'),
    setSeq: db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };

  type EntryRow = { uid: number; ref: string; flags: string; version: string | null; added_at: number; direction: string | null; read: number | null };
  const splitFlags = (f: string) => (f ? f.split(' ') : []);
  const toEntry = (r: EntryRow): MailFolderEntry => {
    const flags = splitFlags(r.flags).filter((f) => !(r.direction === 'in' && f === SEEN));
    if (r.direction === 'in' && r.read === 1) flags.unshift(SEEN);
    return { uid: r.uid, ref: r.ref, flags, version: r.version, addedAt: r.added_at };
  };
  const info = (name: string): MailFolderInfo | null => {
    const r = s.folder.get(name) as { name: MailFolderName; uidvalidity: number; uidnext: number } | undefined;
    return r ? { name: r.name, uidValidity: r.uidvalidity, uidNext: r.uidnext } : null;
  };
  const need = (name: string): void => {
    if (!info(name)) throw new StoreError('NOT_FOUND', `no mail folder ${name}`);
  };
  const add = (folder: MailFolderName, ref: string, flags: string, version: string | null, at: number): number => {
    const { uid } = s.bump.get(folder) as { uid: number };
    s.insert.run(folder, uid, ref, flags, version, at);
    return uid;
  };

  return {
    sync() {
      return o.run('mailFolders.sync', () => {
        let seq = Number((s.getSeq.get(SEQ_KEY) as { value: string } | undefined)?.value ?? 0);
        const start = seq;
        const now = o.now();
        let changed = s.orphans.run().changes > 0;
        for (;;) {
          const rows = s.log.all(seq, PAGE) as { seq: number; id: string; state: string; direction: string; first: number }[];
          for (const r of rows) {
            seq = r.seq;
            if (r.direction === 'in') {
              if (r.state === 'received' && !s.hasRef.get(r.id)) add('INBOX', r.id, '', null, now);
              continue;
            }
            if (r.seq === r.first) add('Sent', r.id, SEEN, r.state, now);
            else if (FINAL.has(r.state)) {
              for (const e of s.byRef.all('Sent', r.id) as { uid: number; flags: string }[]) {
                s.remove.run('Sent', e.uid);
                add('Sent', r.id, e.flags, r.state, now);
              }
            }
            const bounce = `dsn:${r.id}:${r.state}`;
            if (BOUNCE.has(r.state) && !s.hasRef.get(bounce)) add('INBOX', bounce, '', null, now);
          }
          if (rows.length < PAGE) break;
        }
        if (seq !== start) {
          s.setSeq.run(SEQ_KEY, String(seq));
          changed = true;
        }
        return changed;
      });
    },
    info: (name) => o.run('mailFolders.info', () => info(name)),
    list: () => o.run('mailFolders.list', () => (s.folders.all() as { name: MailFolderName; uidvalidity: number; uidnext: number }[]).map((r) => ({ name: r.name, uidValidity: r.uidvalidity, uidNext: r.uidnext }))),
    entries: (folder) => o.run('mailFolders.entries', () => (s.entries.all(folder) as EntryRow[]).map(toEntry)),
    setFlags(folder, uid, flags) {
      o.run('mailFolders.setFlags', () => {
        const r = s.entry.get(folder, uid) as EntryRow | undefined;
        if (!r) throw new StoreError('NOT_FOUND', `no entry ${uid} in ${folder}`);
        const unique = [...new Set(flags)];
        if (r.direction === 'in') s.setRead.run(unique.includes(SEEN) ? 1 : 0, r.ref);
        s.setFlags.run(unique.filter((f) => !(r.direction === 'in' && f === SEEN)).join(' '), folder, uid);
      });
    },
    copy(from, uids, to) {
      return o.run('mailFolders.copy', () => {
        need(from);
        need(to);
        const now = o.now();
        const out: [number, number][] = [];
        for (const uid of [...uids].sort((a, b) => a - b)) {
          const r = s.entry.get(from, uid) as EntryRow | undefined;
          if (!r) continue;
          const flags = toEntry(r).flags.join(' ');
          out.push([uid, add(to, r.ref, flags, r.version, now)]);
        }
        return out;
      });
    },
    expunge(folder, uids) {
      o.run('mailFolders.expunge', () => {
        for (const uid of uids) s.remove.run(folder, uid);
      });
    },
  };
}
