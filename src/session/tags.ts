/**
 * The receiver's window of expected tags (PROTOCOL.md §8.2): for each session, the tags of counters
 * RH+1 … RH+W and of its stored skipped keys, in one map from tag to (session, counter), so an
 * incoming SESSION envelope finds its session in O(1) with no trial decryption.
 *
 * In memory only: the node rebuilds it on start from each session's stored state and skipped keys
 * (`add`), and keeps it in step after each commit (`accepted`, `drop`, `remove`). It holds no
 * secret, only tags.
 */
import { toHex } from '../bytes.js';
import type { SessionState } from './ratchet.js';
import { tagFor } from './ratchet.js';

export const DEFAULT_TAG_WINDOW = 128;

export interface TagHit {
  sessionId: string;
  /** The message's tag counter: pass it to `decrypt` as `k`. */
  k: number;
}

interface Entry {
  /** counter → map key of its tag */
  byK: Map<number, string>;
  /** The highest counter whose tag is in the window. */
  top: number;
  tagKey: Uint8Array;
}

export class TagIndex {
  readonly window: number;
  #tags = new Map<string, TagHit>();
  #sessions = new Map<string, Entry>();

  constructor(opts: { window?: number } = {}) {
    this.window = opts.window ?? DEFAULT_TAG_WINDOW;
    if (!Number.isInteger(this.window) || this.window < 1) throw new RangeError(`tag window must be a positive integer, got ${this.window}`);
  }

  /** Number of tags expected, all sessions together. */
  get size(): number {
    return this.#tags.size;
  }

  /** Starts expecting a session's tags (replacing what was expected for it before). */
  add(sessionId: string, state: SessionState, skipped: Iterable<{ k: number; tag: Uint8Array }> = []): void {
    this.remove(sessionId);
    const entry: Entry = { byK: new Map(), top: state.recvHighest, tagKey: state.recvTagKey };
    this.#sessions.set(sessionId, entry);
    for (const s of skipped) this.#put(sessionId, entry, s.k, s.tag);
    this.#extend(sessionId, entry, state.recvHighest);
  }

  lookup(tag: Uint8Array): TagHit | undefined {
    return this.#tags.get(toHex(tag));
  }

  /** After a message with counter k was committed and the session's state is `state`. */
  accepted(sessionId: string, state: SessionState, k: number): void {
    const entry = this.#sessions.get(sessionId);
    if (!entry) return this.add(sessionId, state);
    this.drop(sessionId, k);
    this.#extend(sessionId, entry, state.recvHighest);
  }

  /** A counter no longer expected: received, or its skipped key dropped. */
  drop(sessionId: string, k: number): void {
    const entry = this.#sessions.get(sessionId);
    const key = entry?.byK.get(k);
    if (key === undefined) return;
    entry!.byK.delete(k);
    this.#tags.delete(key);
  }

  remove(sessionId: string): void {
    const entry = this.#sessions.get(sessionId);
    if (!entry) return;
    for (const key of entry.byK.values()) this.#tags.delete(key);
    this.#sessions.delete(sessionId);
  }

  #extend(sessionId: string, entry: Entry, recvHighest: number): void {
    const last = recvHighest + this.window;
    for (let k = Math.max(entry.top, recvHighest) + 1; k <= last; k++) this.#put(sessionId, entry, k, tagFor(entry.tagKey, k));
    entry.top = Math.max(entry.top, last);
  }

  #put(sessionId: string, entry: Entry, k: number, tag: Uint8Array): void {
    const key = toHex(tag);
    entry.byK.set(k, key);
    this.#tags.set(key, { sessionId, k });
  }
}
