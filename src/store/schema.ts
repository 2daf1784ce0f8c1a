/**
 * The database schema, as an ordered list of migrations. The file's `PRAGMA user_version` is the
 * number of the last migration applied; `migrate` runs each newer one in its own transaction and
 * bumps user_version inside that transaction, so a crash or a failing statement leaves the file at
 * the previous version, never half-migrated. Never edit a released migration: append a new one.
 *
 * Conventions: times are integer milliseconds since the Unix epoch; ids and keys are lower-case hex
 * text (message id 32 chars = 16 bytes, Ed25519/X25519 keys 64 chars); bytes that are only ever
 * compared or passed on (envelopes, hashes, signatures, bundles) are BLOBs. Tables are STRICT so a
 * wrongly typed value is refused rather than coerced.
 */
import type { Database } from 'better-sqlite3';
import type { Logger } from '../log.js';
import { StoreError } from './errors.js';

export interface Migration {
  /** 1, 2, 3, … with no gaps. */
  readonly version: number;
  readonly description: string;
  /** SQL run inside the migration's transaction. */
  readonly up: string;
}

const HEX32 = (col: string) => `length(${col}) = 32 AND ${col} NOT GLOB '*[^0-9a-f]*'`;
const HEX64 = (col: string) => `length(${col}) = 64 AND ${col} NOT GLOB '*[^0-9a-f]*'`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'messages, state history, inbound dedup, contacts, settings',
    up: `
      -- One row per message, both directions. Outgoing rows carry the sealed envelope, which is what
      -- every retry sends (the same bytes each time, so the receiver's dedup and receipt line up).
      --   state (out): queued → sending → delivered | queued (retry) | expired | failed | held
      --   state (in):  received
      CREATE TABLE messages (
        id              TEXT PRIMARY KEY CHECK (${HEX32('id')}),
        direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind            TEXT NOT NULL CHECK (kind IN ('mail', 'chat')),
        peer_identity   TEXT NOT NULL CHECK (${HEX64('peer_identity')}), -- sender (in) / recipient (out) Ed25519 key
        peer_onion      TEXT,             -- the peer's onion address as used for this message
        peer_label      TEXT,             -- alias or name as the user typed it; display only
        subject         TEXT,
        body            TEXT NOT NULL,
        thread_id       TEXT NOT NULL,    -- the root message's id; a new conversation uses its own id
        in_reply_to     TEXT,
        created_at      INTEGER NOT NULL, -- sender's clock
        expires_at      INTEGER NOT NULL, -- sender's TTL; outgoing rows expire here
        received_at     INTEGER,          -- in: when we committed it
        delivered_at    INTEGER,          -- out: when a valid receipt arrived
        sort_at         INTEGER NOT NULL, -- listing order: received_at (in) or created_at (out)
        state           TEXT NOT NULL,
        state_reason    TEXT,             -- why failed / held / last retry, for people
        envelope        BLOB,             -- out: sealed bytes, sent unchanged on every attempt
        envelope_hash   BLOB,             -- SHA-256(envelope), what receipts sign
        receipt         BLOB,             -- out: the peer's signature; in: the receipt we sent
        read            INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
        attempts        INTEGER NOT NULL DEFAULT 0, -- delivery attempts started
        next_attempt_at INTEGER,          -- out, queued: not before this time
        CHECK ((direction = 'in' AND state = 'received' AND received_at IS NOT NULL)
            OR (direction = 'out' AND envelope IS NOT NULL
                AND state IN ('queued', 'sending', 'delivered', 'expired', 'failed', 'held')))
      ) STRICT;
      -- The outbox's hot path: the next due queued row, and rows that may still expire.
      CREATE INDEX messages_due ON messages (next_attempt_at) WHERE state = 'queued';
      CREATE INDEX messages_expiring ON messages (expires_at) WHERE state IN ('queued', 'held');
      -- Inbox / outbox pages (newest first), threads, per-peer hold and release.
      CREATE INDEX messages_list ON messages (direction, sort_at DESC, id DESC);
      CREATE INDEX messages_thread ON messages (thread_id, sort_at);
      CREATE INDEX messages_peer ON messages (peer_identity, state);

      -- Every state a message enters, in order (one row per transition, never updated).
      CREATE TABLE message_events (
        seq        INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        at         INTEGER NOT NULL,
        state      TEXT NOT NULL,
        detail     TEXT
      ) STRICT;
      CREATE INDEX message_events_by_message ON message_events (message_id, seq);

      -- Inbound dedup. Separate from messages so that deleting a message does not make a replay of
      -- it look new. Kept until keep_until = expires_at + allowed clock skew: after that the
      -- envelope's own timestamps make the receiver refuse it anyway.
      CREATE TABLE seen (
        message_id      TEXT PRIMARY KEY,
        sender_identity TEXT NOT NULL,
        envelope_hash   BLOB NOT NULL,
        receipt         BLOB NOT NULL, -- re-sent unchanged to a duplicate
        seen_at         INTEGER NOT NULL,
        keep_until      INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX seen_keep_until ON seen (keep_until);

      -- Address book with pinned keys. alias_key is the alias folded (NFKC, lower case) so lookups
      -- are case-insensitive for any script; alias keeps the user's spelling.
      CREATE TABLE contacts (
        alias_key        TEXT PRIMARY KEY,
        alias            TEXT NOT NULL CHECK (length(alias) > 0),
        identity_key     TEXT NOT NULL UNIQUE CHECK (${HEX64('identity_key')}),
        encryption_key   TEXT CHECK (encryption_key IS NULL OR (${HEX64('encryption_key')})),
        onion            TEXT NOT NULL,
        source           TEXT NOT NULL CHECK (source IN ('manual', 'registry', 'onion')),
        registry_name    TEXT,
        registry_owner   TEXT,
        registry_version INTEGER,
        pinned_bundle    BLOB,    -- the signed key bundle we trust for this contact
        pinned_at        INTEGER,
        key_change       TEXT,    -- JSON KeyChange: a new key seen but not approved; null when none
        notes            TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
      ) STRICT;

      -- Small node-wide settings and counters.
      CREATE TABLE kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    description: 'outbox diagnostics: one row per delivery attempt, last error code per message',
    up: `
      ALTER TABLE messages ADD COLUMN last_error_code TEXT;
      CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY,
        message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        outcome     TEXT CHECK (outcome IS NULL
                                OR outcome IN ('delivered', 'retry', 'failed', 'held', 'aborted', 'expired')),
        error_code  TEXT,
        detail      TEXT
      ) STRICT;
      CREATE INDEX attempts_by_message ON attempts (message_id, id);
    `,
  },
  {
    version: 3,
    description: 'outbox hot path: message content in its own table, due rows indexed by peer',
    // 1. A state change rewrote the whole message row, and with a 4 KiB envelope and the body
    //    inline that meant its overflow pages too: about 5 page writes per UPDATE against 0.5 for a
    //    row without them, several times per message. Body and envelope are written once, so they
    //    move to message_content; messages keeps the small, often-updated metadata. SQLite cannot
    //    drop a column a CHECK names, so messages is rebuilt (the documented 12-step way; migrate()
    //    runs migrations with foreign keys off and checks them before committing).
    // 2. With one index over all queued rows by next_attempt_at, "the next due row of a peer that is
    //    not busy" walked every queued row of the busy ones. The outbox now lists the queued peers
    //    with a loose index scan and seeks each one.
    up: `
      CREATE TABLE message_content (
        id       TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
        body     TEXT NOT NULL,
        envelope BLOB -- out: sealed bytes, sent unchanged on every attempt (empty until sealed)
      ) STRICT;
      INSERT INTO message_content (id, body, envelope) SELECT id, body, envelope FROM messages;

      CREATE TABLE messages_v3 (
        id              TEXT PRIMARY KEY CHECK (${HEX32('id')}),
        direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind            TEXT NOT NULL CHECK (kind IN ('mail', 'chat')),
        peer_identity   TEXT NOT NULL CHECK (${HEX64('peer_identity')}), -- sender (in) / recipient (out) Ed25519 key
        peer_onion      TEXT,             -- the peer's onion address as used for this message
        peer_label      TEXT,             -- alias or name as the user typed it; display only
        subject         TEXT,
        thread_id       TEXT NOT NULL,    -- the root message's id; a new conversation uses its own id
        in_reply_to     TEXT,
        created_at      INTEGER NOT NULL, -- sender's clock
        expires_at      INTEGER NOT NULL, -- sender's TTL; outgoing rows expire here
        received_at     INTEGER,          -- in: when we committed it
        delivered_at    INTEGER,          -- out: when a valid receipt arrived
        sort_at         INTEGER NOT NULL, -- listing order: received_at (in) or created_at (out)
        state           TEXT NOT NULL,
        state_reason    TEXT,             -- why failed / held / last retry, for people
        envelope_hash   BLOB,             -- SHA-256(envelope), what receipts sign
        receipt         BLOB,             -- out: the peer's signature; in: the receipt we sent
        read            INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
        attempts        INTEGER NOT NULL DEFAULT 0, -- delivery attempts started
        next_attempt_at INTEGER,          -- out, queued: not before this time
        last_error_code TEXT,
        CHECK ((direction = 'in' AND state = 'received' AND received_at IS NOT NULL)
            OR (direction = 'out' AND state IN ('queued', 'sending', 'delivered', 'expired', 'failed', 'held')))
      ) STRICT;
      INSERT INTO messages_v3 (id, direction, kind, peer_identity, peer_onion, peer_label, subject, thread_id, in_reply_to,
          created_at, expires_at, received_at, delivered_at, sort_at, state, state_reason, envelope_hash, receipt, read,
          attempts, next_attempt_at, last_error_code)
        SELECT id, direction, kind, peer_identity, peer_onion, peer_label, subject, thread_id, in_reply_to,
          created_at, expires_at, received_at, delivered_at, sort_at, state, state_reason, envelope_hash, receipt, read,
          attempts, next_attempt_at, last_error_code FROM messages;
      DROP TABLE messages;
      ALTER TABLE messages_v3 RENAME TO messages;

      -- The outbox's hot path: queued rows per peer in due order, and rows that may still expire.
      CREATE INDEX messages_due_by_peer ON messages (peer_identity, next_attempt_at, sort_at) WHERE state = 'queued';
      CREATE INDEX messages_expiring ON messages (expires_at) WHERE state IN ('queued', 'held');
      -- Inbox / outbox pages (newest first), threads, per-peer hold and release.
      CREATE INDEX messages_list ON messages (direction, sort_at DESC, id DESC);
      CREATE INDEX messages_thread ON messages (thread_id, sort_at);
      CREATE INDEX messages_peer ON messages (peer_identity, state);

      -- What the store reads: a message with its content.
      CREATE VIEW message_rows AS
        SELECT m.*, c.body AS body, c.envelope AS envelope FROM messages m JOIN message_content c ON c.id = m.id;
    `,
  },
  {
    version: 4,
    description: 'everyday use: attachments, archive flag, drafts, full-text search',
    // The code that uses these tables is in mailbox.ts.
    // - Attachments are stored beside the message (both directions: an outgoing message queued
    //   before its recipient's key was known is sealed later, from these rows). Deleting a message
    //   cascades to them; secure_delete overwrites the freed pages.
    // - Search is an FTS5 table with FTS5's own 'secure-delete' on, so deleting a message removes its
    //   terms from the index at once. It keeps its own copy of the text: a contentless table (no
    //   copy) only marks deleted rows and leaves their terms in the index until a merge, which
    //   deleting a message must not do. Its rowids come from message_search_ids (INTEGER PRIMARY
    //   KEY, stable across VACUUM, unlike the implicit rowid of messages). Triggers keep it in step
    //   with message_content (insert) and messages (delete).
    up: `
      ALTER TABLE messages ADD COLUMN archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1));
      ALTER TABLE messages ADD COLUMN attachment_count INTEGER NOT NULL DEFAULT 0;

      CREATE TABLE message_attachments (
        message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        idx        INTEGER NOT NULL CHECK (idx >= 0 AND idx < 16),
        name       TEXT NOT NULL,
        media_type TEXT NOT NULL,
        data       BLOB NOT NULL,
        PRIMARY KEY (message_id, idx)
      ) STRICT, WITHOUT ROWID;

      -- Unsent messages being written. recipient is what the user typed (alias, name or onion).
      CREATE TABLE drafts (
        id          TEXT PRIMARY KEY CHECK (${HEX32('id')}),
        kind        TEXT NOT NULL CHECK (kind IN ('mail', 'chat')),
        recipient   TEXT NOT NULL,
        subject     TEXT NOT NULL,
        body        TEXT NOT NULL,
        thread_id   TEXT,
        in_reply_to TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX drafts_by_update ON drafts (updated_at DESC);
      CREATE TABLE draft_attachments (
        draft_id   TEXT NOT NULL REFERENCES drafts (id) ON DELETE CASCADE,
        idx        INTEGER NOT NULL CHECK (idx >= 0 AND idx < 16),
        name       TEXT NOT NULL,
        media_type TEXT NOT NULL,
        data       BLOB NOT NULL,
        PRIMARY KEY (draft_id, idx)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE message_search_ids (
        rowid      INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE
      ) STRICT;
      CREATE VIRTUAL TABLE message_search USING fts5 (
        sender, subject, body, tokenize = 'unicode61 remove_diacritics 2'
      );
      INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);

      CREATE TRIGGER message_search_add AFTER INSERT ON message_content BEGIN
        INSERT INTO message_search_ids (message_id) VALUES (new.id);
        INSERT INTO message_search (rowid, sender, subject, body)
          SELECT i.rowid, concat_ws(' ', m.peer_label, m.peer_onion), coalesce(m.subject, ''), new.body
          FROM messages m JOIN message_search_ids i ON i.message_id = m.id WHERE m.id = new.id;
      END;
      CREATE TRIGGER message_search_remove AFTER DELETE ON messages BEGIN
        DELETE FROM message_search WHERE rowid = (SELECT rowid FROM message_search_ids WHERE message_id = old.id);
        DELETE FROM message_search_ids WHERE message_id = old.id;
      END;

      INSERT INTO message_search_ids (message_id) SELECT id FROM messages ORDER BY sort_at, id;
      INSERT INTO message_search (rowid, sender, subject, body)
        SELECT i.rowid, concat_ws(' ', m.peer_label, m.peer_onion), coalesce(m.subject, ''), c.body
        FROM message_search_ids i JOIN messages m ON m.id = i.message_id JOIN message_content c ON c.id = m.id;
    `,
  },
  {
    version: 5,
    description: 'mail bridge: IMAP folders with stable UIDs, per-entry flags, and how far the message log has been read',
    // The code is in mail-folders.ts. A folder entry points at a message (ref = its id) or at a
    // bounce the bridge writes for one (ref = 'dsn:<id>:<state>'). UIDs only grow (uidnext) and
    // uidvalidity is fixed when the folder is made, so a mail client's cache stays valid across
    // restarts. No foreign key on ref (a bounce is not a message): entries of a deleted message are
    // dropped by the next sync.
    up: `
      CREATE TABLE mail_folders (
        name        TEXT PRIMARY KEY,
        uidvalidity INTEGER NOT NULL CHECK (uidvalidity > 0),
        uidnext     INTEGER NOT NULL CHECK (uidnext > 0)
      ) STRICT;
      INSERT INTO mail_folders (name, uidvalidity, uidnext)
        SELECT f.name, CAST(strftime('%s', 'now') AS INTEGER), 1
        FROM (SELECT 'INBOX' AS name UNION ALL SELECT 'Sent' UNION ALL SELECT 'Trash') f;
      CREATE TABLE mail_entries (
        folder   TEXT NOT NULL REFERENCES mail_folders (name),
        uid      INTEGER NOT NULL,
        ref      TEXT NOT NULL,            -- message id, or 'dsn:<message id>:<state>'
        flags    TEXT NOT NULL DEFAULT '', -- space-separated; the Seen flag of received mail is messages.read instead
        version  TEXT,                     -- Sent: the delivery state this copy shows (a copy never changes)
        added_at INTEGER NOT NULL,
        PRIMARY KEY (folder, uid)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX mail_entries_ref ON mail_entries (ref);
    `,
  },
  {
    version: 6,
    description: 'idempotent sends: a caller-chosen key per outgoing message',
    // A caller that retries a send (its API connection closed after the commit, the CLI was killed)
    // gives the same key and gets the first message back instead of a second one. The key lives as
    // long as its message; request_hash is what was asked the first time, so the key reused for
    // another message is refused instead of silently answered with the first.
    up: `
      CREATE TABLE send_keys (
        idem_key     TEXT PRIMARY KEY CHECK (length(idem_key) BETWEEN 1 AND 128),
        message_id   TEXT NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
        request_hash BLOB NOT NULL,
        created_at   INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    description: 'sessions: ratchet state per session, our prekeys, skipped message keys, seen tags, receipt keys of queued messages',
    // The code is in sessions.ts; the formats in PROTOCOL.md and src/session/. Secrets live here
    // (ratchet states, prekey secrets, skipped and receipt keys): the file is 0600 in a 0700 dir,
    // and secure_delete overwrites what is deleted. Keys and tags are BLOBs, session ids 32 hex.
    up: `
      -- Our signed prekeys: X25519 (secret 32 bytes) and ML-KEM-768 (its 64-byte seed). One current
      -- per kind; a replaced one keeps working until delete_after (mail sealed to it may still arrive).
      CREATE TABLE session_signed_prekeys (
        kind         TEXT NOT NULL CHECK (kind IN ('x25519', 'mlkem768')),
        id           INTEGER NOT NULL CHECK (id >= 0 AND id <= 4294967295),
        secret       BLOB NOT NULL,
        public       BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        retired_at   INTEGER,  -- NULL: the current one of its kind
        delete_after INTEGER,
        PRIMARY KEY (kind, id),
        CHECK ((retired_at IS NULL) = (delete_after IS NULL))
      ) STRICT, WITHOUT ROWID;
      CREATE UNIQUE INDEX session_signed_prekeys_current ON session_signed_prekeys (kind) WHERE retired_at IS NULL;

      -- One-time X25519 prekeys. handed_out_at: given in a BUNDLE answer (never given twice); the
      -- row is deleted when an INIT uses it.
      CREATE TABLE session_one_time_prekeys (
        id            INTEGER PRIMARY KEY CHECK (id >= 0 AND id <= 4294967295),
        secret        BLOB NOT NULL,
        public        BLOB NOT NULL,
        created_at    INTEGER NOT NULL,
        handed_out_at INTEGER
      ) STRICT;
      CREATE INDEX session_one_time_prekeys_pool ON session_one_time_prekeys (id) WHERE handed_out_at IS NULL;

      -- The highest prekey id ever used per kind: ids only grow, so an old INIT never names a newer
      -- key under a reused id, even after the old key's row is gone.
      CREATE TABLE session_prekey_ids (
        kind TEXT PRIMARY KEY CHECK (kind IN ('x25519', 'mlkem768', 'one-time')),
        high INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;

      -- One row per session (both roles). current = 1: the session we send on to that peer (at most
      -- one); the others are receive-only until their skipped keys and seen tags are gone.
      CREATE TABLE sessions (
        id            TEXT PRIMARY KEY CHECK (${HEX32('id')}),
        peer_identity TEXT NOT NULL CHECK (${HEX64('peer_identity')}),
        role          TEXT NOT NULL CHECK (role IN ('initiator', 'responder')),
        state         BLOB NOT NULL,
        current       INTEGER NOT NULL CHECK (current IN (0, 1)),
        confirmed     INTEGER NOT NULL CHECK (confirmed IN (0, 1)), -- the peer is known to hold it
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX sessions_current ON sessions (peer_identity) WHERE current = 1;
      CREATE INDEX sessions_by_peer ON sessions (peer_identity, created_at);

      -- Keys of messages the peer sent that have not arrived (PROTOCOL.md §6.4), by tag counter k.
      CREATE TABLE session_skipped_keys (
        session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        k           INTEGER NOT NULL CHECK (k >= 0),
        tag         BLOB NOT NULL,
        header_key  BLOB NOT NULL,
        n           INTEGER NOT NULL CHECK (n >= 0),
        message_key BLOB NOT NULL,
        expires_at  INTEGER NOT NULL,
        PRIMARY KEY (session_id, k)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX session_skipped_keys_expiry ON session_skipped_keys (expires_at);

      -- Envelopes accepted, by their seen key (a SESSION tag, or an INIT's SHA256(envelope)[0..16]),
      -- until the message expires: a retry gets the same receipt and no second row. No foreign key:
      -- dedup outlives a dropped session.
      CREATE TABLE session_seen (
        seen_key      BLOB PRIMARY KEY CHECK (length(seen_key) = 16),
        session_id    TEXT NOT NULL,
        message_id    TEXT NOT NULL,
        envelope_hash BLOB NOT NULL,
        receipt       BLOB NOT NULL,
        expires_at    INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX session_seen_expiry ON session_seen (expires_at);

      -- Sender side: the receipt key of each queued message, until its receipt arrives.
      CREATE TABLE session_outgoing (
        message_id  TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
        session_id  TEXT NOT NULL,
        k           INTEGER NOT NULL CHECK (k >= 0),
        receipt_key BLOB NOT NULL CHECK (length(receipt_key) = 32)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX session_outgoing_by_session ON session_outgoing (session_id);
    `,
  },
  {
    version: 8,
    description: 'outbox at scale: per-peer backoff in one row per peer; start-up and counts without a scan',
    // 1. The backoff of a peer that is down was copied into every queued row of that peer (one
    //    UPDATE of the whole queue per failed attempt), and each new message to it was due at once,
    //    so it cost a dial of its own. peer_state holds the peer's backoff once; a queued message is
    //    due when its own next_attempt_at (set only by the message's own attempts) and its peer's
    //    have both passed.
    // 2. start() re-queues rows left 'sending' and closes attempts left open by a crash; both were
    //    full scans of tables that grow with the backlog and the history.
    // 3. message_rows also gives the peer's next attempt, so that a queued message shows when it
    //    will really be tried: the later of its own and its peer's.
    // 4. counts() (every `status`) scanned the whole messages table. message_counts keeps the
    //    numbers by direction and state, maintained by triggers on messages (a later migration
    //    that rebuilds messages must create them again).
    up: `
      CREATE TABLE peer_state (
        peer_identity   TEXT PRIMARY KEY CHECK (${HEX64('peer_identity')}),
        failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0), -- failed steps since the last success: the backoff step
        next_attempt_at INTEGER NOT NULL DEFAULT 0, -- no delivery to this peer before this
        last_error_code TEXT,             -- the code of the last failed step
        last_failure_at INTEGER,
        last_success_at INTEGER,          -- the last receipt from this peer
        updated_at      INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;

      CREATE INDEX messages_sending ON messages (peer_identity) WHERE state = 'sending';
      CREATE INDEX attempts_open ON attempts (message_id) WHERE finished_at IS NULL;

      DROP VIEW message_rows;
      CREATE VIEW message_rows AS
        SELECT m.*, c.body AS body, c.envelope AS envelope, p.next_attempt_at AS peer_next_attempt_at
        FROM messages m JOIN message_content c ON c.id = m.id LEFT JOIN peer_state p ON p.peer_identity = m.peer_identity;

      CREATE TABLE message_counts (
        key TEXT PRIMARY KEY, -- '<direction>:<state>' ('out:queued', 'in:received', …) or 'in:unread'
        n   INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO message_counts (key, n) SELECT direction || ':' || state, COUNT(*) FROM messages GROUP BY direction, state;
      INSERT INTO message_counts (key, n) SELECT 'in:unread', COUNT(*) FROM messages WHERE direction = 'in' AND read = 0;
      CREATE TRIGGER message_counts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO message_counts (key, n) VALUES (NEW.direction || ':' || NEW.state, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1;
        UPDATE message_counts SET n = n + 1 WHERE key = 'in:unread' AND NEW.direction = 'in' AND NEW.read = 0;
      END;
      CREATE TRIGGER message_counts_update AFTER UPDATE OF direction, state, read ON messages
        WHEN OLD.direction IS NOT NEW.direction OR OLD.state IS NOT NEW.state OR OLD.read IS NOT NEW.read
      BEGIN
        UPDATE message_counts SET n = n - 1 WHERE key = OLD.direction || ':' || OLD.state;
        INSERT INTO message_counts (key, n) VALUES (NEW.direction || ':' || NEW.state, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1;
        UPDATE message_counts SET n = n - 1 WHERE key = 'in:unread' AND OLD.direction = 'in' AND OLD.read = 0;
        UPDATE message_counts SET n = n + 1 WHERE key = 'in:unread' AND NEW.direction = 'in' AND NEW.read = 0;
      END;
      CREATE TRIGGER message_counts_delete AFTER DELETE ON messages BEGIN
        UPDATE message_counts SET n = n - 1 WHERE key = OLD.direction || ':' || OLD.state;
        UPDATE message_counts SET n = n - 1 WHERE key = 'in:unread' AND OLD.direction = 'in' AND OLD.read = 0;
      END;
    `,
  },
  {
    version: 9,
    description: 'protocol 2: undelivered messages sealed for protocol 1 wait for a session',
    // A version-1 envelope (a sealed box: a bucket + 48 bytes, signed inside) cannot be sent to a
    // node speaking protocol 2, and there is no session to put the message in yet. Such messages
    // lose their envelope and are encrypted again at their first attempt (the unsealed path: a
    // BUNDLE, an agreement, the oldest becomes the INIT); their ids, bodies and times stay.
    // Delivered and incoming rows keep what they had (their v1 receipts are 64-byte signatures).
    up: `
      UPDATE message_content SET envelope = x''
      WHERE length(envelope) IN (${[1024, 4096, 16384, 65536, 262144].map((b) => b + 48).join(', ')})
        AND id IN (SELECT id FROM messages WHERE direction = 'out' AND state IN ('queued', 'sending', 'held'));
      UPDATE messages SET envelope_hash = x''
      WHERE direction = 'out' AND state IN ('queued', 'sending', 'held')
        AND id IN (SELECT id FROM message_content WHERE length(envelope) = 0);
    `,
  },
  {
    version: 10,
    description: 'everyday use: verified registry names of senders, rejected key changes',
    // The code is in mailbox.ts.
    // - peer_names: a sender's registry name, once a forward lookup of the name it claimed (HELLO
    //   `name=`) returned its identity key. What the inbox shows for people who are not contacts.
    // - rejected_keys: a contact's key change the user rejected. The same key at the same record
    //   version is then neither alerted on nor held for again: mail keeps going to the pinned key.
    up: `
      CREATE TABLE peer_names (
        identity_key TEXT PRIMARY KEY CHECK (${HEX64('identity_key')}),
        name         TEXT NOT NULL,
        owner        TEXT,
        verified_at  INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE rejected_keys (
        contact_identity TEXT PRIMARY KEY CHECK (${HEX64('contact_identity')}), -- the pinned key the user kept
        identity_key     TEXT NOT NULL,   -- the key they rejected
        registry_version INTEGER,
        rejected_at      INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 11,
    description: 'the mailbox providers this user subscribed at',
    // The code is in mailbox-providers.ts. One row per provider the node subscribed at (issue 11):
    // its onion and identity key, the terms it signed (kept with its signature, so they can be shown
    // to anyone later), when we subscribed, and when we last fetched from it (null: never).
    up: `
      CREATE TABLE mailbox_providers (
        onion         TEXT PRIMARY KEY CHECK (length(onion) = 62 AND onion GLOB '*.onion'),
        identity_key  TEXT NOT NULL UNIQUE CHECK (${HEX64('identity_key')}),
        retention_ms  INTEGER NOT NULL CHECK (retention_ms >= 0),
        quota_bytes   INTEGER NOT NULL CHECK (quota_bytes >= 0),
        terms_time    INTEGER NOT NULL,
        terms_sig     BLOB NOT NULL CHECK (length(terms_sig) = 64),
        subscribed_at INTEGER NOT NULL,
        last_fetch_at INTEGER
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 12,
    description: 'offline delivery: deposits at a recipient\'s providers, the providers peers list',
    // The code is in deposits.ts (issue 11, items 4 and 7).
    // - messages.mailboxes: the providers (JSON array of onions) that hold the message's current
    //   envelope for its recipient; shown as "in mailbox" while the message is undelivered. Cleared
    //   when the message is encrypted again (the deposited bytes are then not what we send).
    // - mailbox_deposits: each provider's signed receipt for a deposit (its word that it holds
    //   exactly those bytes), kept to score the provider later.
    // - peer_mailboxes: the providers a peer's newest signed bundle listed: where to deposit when
    //   the peer is offline.
    up: `
      ALTER TABLE messages ADD COLUMN mailboxes TEXT;
      CREATE TABLE mailbox_deposits (
        message_id    TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        provider      TEXT NOT NULL CHECK (length(provider) = 62 AND provider GLOB '*.onion'),
        seq           INTEGER NOT NULL,
        envelope_hash BLOB NOT NULL CHECK (length(envelope_hash) = 32),
        deposited_at  INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        receipt       BLOB NOT NULL CHECK (length(receipt) = 64),
        PRIMARY KEY (message_id, provider, envelope_hash)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE peer_mailboxes (
        peer_identity     TEXT PRIMARY KEY CHECK (${HEX64('peer_identity')}),
        mailboxes         TEXT NOT NULL,   -- JSON array of onions, as the bundle listed them
        bundle_created_at INTEGER NOT NULL, -- the listing bundle's time: an older bundle never overwrites a newer one
        updated_at        INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 13,
    description: 'measured reputation of mailbox providers',
    // The code is in provider-reputation.ts (issue 12, item 4).
    // - provider_tallies: per provider and kind of event (deposit_ok, lost, …), the events' sum
    //   decayed to the newest one's time (src/provider/reputation.ts KindTally): the whole history
    //   in constant space.
    // - provider_events: the newest events per provider (capped in the code), to show what happened.
    // - mailbox_deposits.settled: null while the message is undelivered; then what the deposit
    //   counted as for its provider ('delivered', 'lost', or 'void': not the provider's doing).
    // - mailbox_providers.fetch_failing_since: the first failed fetch since the last good one.
    up: `
      CREATE TABLE provider_tallies (
        provider TEXT NOT NULL CHECK (length(provider) = 62 AND provider GLOB '*.onion'),
        kind     TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
        weight   REAL NOT NULL CHECK (weight >= 0),
        count    INTEGER NOT NULL CHECK (count >= 0),
        at       INTEGER NOT NULL,
        PRIMARY KEY (provider, kind)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE provider_events (
        id       INTEGER PRIMARY KEY,
        provider TEXT NOT NULL CHECK (length(provider) = 62 AND provider GLOB '*.onion'),
        at       INTEGER NOT NULL,
        kind     TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
        detail   TEXT CHECK (detail IS NULL OR length(detail) <= 200)
      ) STRICT;
      CREATE INDEX provider_events_by_provider ON provider_events (provider, id);
      ALTER TABLE mailbox_deposits ADD COLUMN settled TEXT;
      CREATE INDEX mailbox_deposits_unsettled ON mailbox_deposits (message_id) WHERE settled IS NULL;
      ALTER TABLE mailbox_providers ADD COLUMN fetch_failing_since INTEGER;
    `,
  },
  {
    version: 14,
    description: 'what each of our mailbox providers last said of our account, and when we last warned that its payment lapses',
    // The code is in mailbox-providers.ts (issue 12, item 2: a priced provider tells the user before
    // it stops serving).
    // - account: the provider's last ACCOUNT_STATUS (PROTOCOL.md §14.4) as JSON {paidUntil (ms; 0 a
    //   free provider), graceMs, heldCount, heldBytes, quotaBytes, time (the provider's), checkedAt
    //   (ours)}; null until it answered once. Asked at each fetch round.
    // - lapse_warned_at: when the node last emitted mailbox.lapsing for it (at most once a day).
    up: `
      ALTER TABLE mailbox_providers ADD COLUMN account TEXT CHECK (account IS NULL OR json_valid(account));
      ALTER TABLE mailbox_providers ADD COLUMN lapse_warned_at INTEGER;
    `,
  },
  {
    version: 15,
    description: 'control messages: session messages no listing shows; when a peer read our message',
    // A control message (PROTOCOL.md §9.2: a read receipt, kind 3) travels like any outgoing
    // message — queued, encrypted once, retried, deposited, receipted — so it is a messages row. But
    // it is not mail: no listing, count, search entry or mail-client folder may show it.
    // - messages.control: the control kind ('read', 'queues'; a lowercase word, so a later kind needs
    //   no migration), or NULL for mail and chat. The kind column's
    //   CHECK (mail, chat) can't change without rebuilding the table, so a control row keeps kind
    //   'chat' there; the store reads `control` first. Incoming control messages are never rows:
    //   their effect is applied in the transaction that commits their receipt.
    // - messages.peer_read_at: outgoing, when the recipient's read receipt for it arrived.
    // - The count and search triggers are made again to pass over control rows, and control rows
    //   are deleted once final (Store.pruneControl).
    up: `
      ALTER TABLE messages ADD COLUMN control TEXT CHECK (control IS NULL OR (length(control) BETWEEN 1 AND 16 AND control NOT GLOB '*[^a-z]*'));
      ALTER TABLE messages ADD COLUMN peer_read_at INTEGER;
      CREATE INDEX messages_control ON messages (state) WHERE control IS NOT NULL;

      DROP TRIGGER message_counts_insert;
      DROP TRIGGER message_counts_update;
      DROP TRIGGER message_counts_delete;
      CREATE TRIGGER message_counts_insert AFTER INSERT ON messages WHEN NEW.control IS NULL BEGIN
        INSERT INTO message_counts (key, n) VALUES (NEW.direction || ':' || NEW.state, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1;
        UPDATE message_counts SET n = n + 1 WHERE key = 'in:unread' AND NEW.direction = 'in' AND NEW.read = 0;
      END;
      CREATE TRIGGER message_counts_update AFTER UPDATE OF direction, state, read ON messages
        WHEN NEW.control IS NULL AND (OLD.direction IS NOT NEW.direction OR OLD.state IS NOT NEW.state OR OLD.read IS NOT NEW.read)
      BEGIN
        UPDATE message_counts SET n = n - 1 WHERE key = OLD.direction || ':' || OLD.state;
        INSERT INTO message_counts (key, n) VALUES (NEW.direction || ':' || NEW.state, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1;
        UPDATE message_counts SET n = n - 1 WHERE key = 'in:unread' AND OLD.direction = 'in' AND OLD.read = 0;
        UPDATE message_counts SET n = n + 1 WHERE key = 'in:unread' AND NEW.direction = 'in' AND NEW.read = 0;
      END;
      CREATE TRIGGER message_counts_delete AFTER DELETE ON messages WHEN OLD.control IS NULL BEGIN
        UPDATE message_counts SET n = n - 1 WHERE key = OLD.direction || ':' || OLD.state;
        UPDATE message_counts SET n = n - 1 WHERE key = 'in:unread' AND OLD.direction = 'in' AND OLD.read = 0;
      END;

      DROP TRIGGER message_search_add;
      CREATE TRIGGER message_search_add AFTER INSERT ON message_content
        WHEN (SELECT control FROM messages WHERE id = new.id) IS NULL
      BEGIN
        INSERT INTO message_search_ids (message_id) VALUES (new.id);
        INSERT INTO message_search (rowid, sender, subject, body)
          SELECT i.rowid, concat_ws(' ', m.peer_label, m.peer_onion), coalesce(m.subject, ''), new.body
          FROM messages m JOIN message_search_ids i ON i.message_id = m.id WHERE m.id = new.id;
      END;
    `,
  },
  {
    version: 16,
    description: 'contact queues: the private queues we made for each contact, and those contacts handed us',
    // The code is in contact-queues.ts (issue 11, item 3; PROTOCOL.md §9.2 kind 4, §14.2).
    // - contact_queues: per contact and provider of ours, the queue we created there for that contact
    //   and its write capability (kept to hand out again; the read capability is derived).
    // - contact_queue_handouts: the handout body we last queued for a contact (a new one goes when
    //   the queues change).
    // - peer_queues: the newest handout a peer sent us (JSON [{provider, queue, writeCap}] in hex)
    //   and its created_at: an older one arriving later is ignored.
    up: `
      CREATE TABLE contact_queues (
        peer_identity TEXT NOT NULL CHECK (${HEX64('peer_identity')}),
        provider      TEXT NOT NULL CHECK (length(provider) = 62 AND provider GLOB '*.onion'),
        queue         BLOB NOT NULL UNIQUE CHECK (length(queue) = 16),
        write_cap     BLOB NOT NULL CHECK (length(write_cap) = 32),
        created_at    INTEGER NOT NULL,
        PRIMARY KEY (peer_identity, provider)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX contact_queues_by_provider ON contact_queues (provider);
      CREATE TABLE contact_queue_handouts (
        peer_identity TEXT PRIMARY KEY CHECK (${HEX64('peer_identity')}),
        body          TEXT NOT NULL,
        queued_at     INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE peer_queues (
        peer_identity TEXT PRIMARY KEY CHECK (${HEX64('peer_identity')}),
        queues        TEXT NOT NULL CHECK (json_valid(queues)),
        handed_at     INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 17,
    description: 'direct onions: where a hidden contact is reached, and which one we told each contact',
    // The code is in contact-queues.ts (issue 11, item 8; PROTOCOL.md §9.2 kind 5).
    // - peer_onions: the onion a contact told us to dial instead of the one its identity key names
    //   (NULL: that one again), with the telling message's created_at (an older one is ignored).
    // - contact_onion_handouts: the direct onion we last told each contact ('' none).
    up: `
      CREATE TABLE peer_onions (
        peer_identity TEXT PRIMARY KEY CHECK (${HEX64('peer_identity')}),
        onion         TEXT CHECK (onion IS NULL OR (length(onion) = 62 AND onion GLOB '*.onion')),
        handed_at     INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE contact_onion_handouts (
        peer_identity TEXT PRIMARY KEY CHECK (${HEX64('peer_identity')}),
        onion         TEXT NOT NULL,
        queued_at     INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings `db` up to the last of `migrations`. Throws MIGRATION_FAILED if the file is newer than
 * this build or a migration fails (that migration is rolled back; earlier ones stay applied).
 * Returns the version before and after.
 */
export function migrate(
  db: Database,
  logger: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length ? migrations[migrations.length - 1]!.version : 0;
  if (from > latest) {
    throw new StoreError('MIGRATION_FAILED', `database schema v${from} is newer than this build (v${latest})`);
  }
  let version = from;
  // Off while migrating, as SQLite's table-rebuild procedure requires (a DROP TABLE would cascade
  // deletes into the tables that reference it); each migration checks the keys before it commits.
  // The pragma is a no-op inside a transaction, so it is set here, between them.
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
  for (const m of migrations) {
    if (m.version <= version) continue;
    if (m.version !== version + 1) {
      throw new StoreError('MIGRATION_FAILED', `migration v${m.version} follows v${version}: gap in the list`);
    }
    db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        db.exec(m.up);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new Error(`${broken.length} rows break a foreign key`);
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    } catch (err) {
      throw new StoreError('MIGRATION_FAILED', `migration v${m.version} (${m.description}) failed`, { cause: err });
    } finally {
      db.pragma(`foreign_keys = ${foreignKeys}`);
    }
    version = m.version;
    logger.info({ version, description: m.description }, 'store migrated');
  }
  return { from, to: version };
}
