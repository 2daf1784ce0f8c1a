/**
 * Read receipts (issue 14; PROTOCOL.md §9.2). When the user reads a contact's chat message and has
 * allowed read receipts, that contact's node is told: one read receipt per contact for everything
 * read within `coalesceMs`, sent by the pipeline as a control message (queued, retried and
 * deposited like mail, shown nowhere).
 *
 * Off by default: when you read a message is yours to tell. The choice is kept in the store (kv
 * `readReceipts`), so it survives a restart. Receipts still waiting for their coalescing turn when
 * the node closes are dropped: they are a courtesy, not mail.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { MAX_READ_IDS } from '../session/index.js';
import type { Store } from '../store/index.js';

const SETTING = 'readReceipts';

export interface ReadReceiptsOptions {
  store: () => Store;
  /** Queues one read receipt to a peer (identity key hex) for `ids` (1..MAX_READ_IDS). */
  send(peerIdentity: string, peerOnion: string, ids: string[]): Promise<void>;
  clock: Clock;
  logger: Logger;
  /** Reads within this long go to a contact in one receipt, ms. Default 1 s. */
  coalesceMs?: number;
}

export class ReadReceipts {
  readonly #o: ReadReceiptsOptions;
  /** Per peer identity: its onion and the ids read since the last flush. */
  readonly #pending = new Map<string, { onion: string; ids: Set<string> }>();
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(o: ReadReceiptsOptions) {
    this.#o = o;
  }

  enabled(): boolean {
    return this.#o.store().getSetting(SETTING) === 'on';
  }

  setEnabled(on: boolean): void {
    this.#o.store().setSetting(SETTING, on ? 'on' : null);
  }

  /** The user read message `id`: if it is a contact's chat message and receipts are on, tell them soon. */
  read(id: string): void {
    if (this.#closed || !this.enabled()) return;
    const m = this.#o.store().getMessage(id);
    if (!m || m.direction !== 'in' || m.kind !== 'chat' || !m.peerOnion) return;
    let p = this.#pending.get(m.peerIdentity);
    if (!p) this.#pending.set(m.peerIdentity, (p = { onion: m.peerOnion, ids: new Set() }));
    p.ids.add(m.id);
    this.#timer ??= this.#o.clock.setTimeout(() => this.#flush(), this.#o.coalesceMs ?? 1000);
  }

  #flush(): void {
    this.#timer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [peer, p] of pending) {
      const ids = [...p.ids];
      for (let i = 0; i < ids.length; i += MAX_READ_IDS) {
        this.#o.send(peer, p.onion, ids.slice(i, i + MAX_READ_IDS)).catch((err: unknown) => {
          this.#o.logger.warn({ err: describeError(err) }, 'a read receipt could not be queued');
        });
      }
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}
