import { OnionpostError } from '../errors.js';

/** Every way the store refuses or fails. Stable codes; callers branch on these, never on messages. */
export type StoreErrorCode =
  | 'DISK_FULL' // SQLITE_FULL: nothing of the failed call was written; earlier commits are intact. Refuse new inbound with a retryable error.
  | 'CORRUPT' // SQLITE_CORRUPT / SQLITE_NOTADB: the file is not a usable database
  | 'CONSTRAINT' // a uniqueness or CHECK constraint refused the row (bad id shape, duplicate alias, wrong state for direction, …)
  | 'NOT_FOUND' // no message / contact with that id or alias
  | 'BAD_STATE' // transition() found the message in a state outside `from`
  | 'BUSY' // SQLITE_BUSY / SQLITE_LOCKED after busy_timeout: another process holds the database
  | 'CLOSED' // the store was closed
  | 'IO' // any other SQLite I/O failure (permissions, read-only file system, I/O error)
  | 'MIGRATION_FAILED'; // a schema migration failed (rolled back), or the file's schema is newer than this build

export class StoreError extends OnionpostError<StoreErrorCode> {}

/**
 * Translates a better-sqlite3 failure into a StoreError. Anything that is not a SQLite error (a bug
 * in our code, a TypeError) is returned unchanged so it is not disguised as a storage fault.
 */
export function toStoreError(err: unknown, what: string): unknown {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) {
    if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
      return new StoreError('CLOSED', `${what}: store is closed`, { cause: err });
    }
    return err;
  }
  const detail = `${what}: ${code}`;
  if (code === 'SQLITE_FULL') return new StoreError('DISK_FULL', `${what}: disk or database full`, { cause: err });
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return new StoreError('CORRUPT', detail, { cause: err });
  if (code.startsWith('SQLITE_CONSTRAINT')) return new StoreError('CONSTRAINT', detail, { cause: err });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreError('BUSY', detail, { cause: err });
  return new StoreError('IO', detail, { cause: err });
}
