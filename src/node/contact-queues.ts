/**
 * Contact queues, the user's side (issue 11, item 3; PROTOCOL.md §9.2 kind 4, §14.2). For each
 * contact we have a session with, a private queue at each of our mailbox providers, handed to that
 * contact inside the session, so that only contacts write to those queues and a stranger is left
 * the public one (rate-limited, behind the onion's PoW).
 *
 *   keep():  providers no longer ours → forget their queues (and remove them there, best effort)
 *            each contact with a session × each provider of ours without a queue for it → create
 *            one there (courier) → if the contact's list of queues changed since the last handout,
 *            queue a new handout (pipeline, a control message: sent, retried and deposited like mail)
 *            and, when we run hidden, the onion we are reachable at directly (kind 5) if the contact
 *            was not told it yet
 *
 * Runs at start, when our providers change, when a contact is added, and every `intervalMs`. One
 * run at a time; asking during a run makes it run once more. A provider that is down is tried again
 * at the next run; the contact keeps depositing in our public queue there meanwhile.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { KeyedRerun } from '../rerun.js';
import { queueHandoutBody, type HandedQueue } from '../session/index.js';
import type { QueueAt, Store } from '../store/index.js';

export interface ContactQueuesOptions {
  store: Store;
  /** Our providers' onions, in the order our bundle lists them. */
  providers(): readonly string[];
  /** Creates a private queue for `peer` at `provider` and records it (Courier.createContactQueue). */
  create(provider: string, peer: string, signal: AbortSignal): Promise<QueueAt>;
  /** Removes a queue at a provider that is no longer ours (best effort). */
  remove(provider: string, queue: Uint8Array, signal: AbortSignal): Promise<void>;
  /** Queues a handout to `peer` (Pipeline.sendQueueHandout). */
  send(peer: string, peerOnion: string, queues: readonly HandedQueue[]): Promise<void>;
  /**
   * The onion we are reachable at directly when we run hidden (not the one our identity key
   * names), else null; and telling a contact so (Pipeline.sendDirectOnion). Default: not hidden.
   */
  directOnion?: () => string | null;
  sendOnion?(peer: string, peerOnion: string, onion: string | null): Promise<void>;
  clock: Clock;
  logger: Logger;
  /** Ends every run when the node closes. */
  signal: AbortSignal;
  /** Runs this often besides the events above, ms. Default 10 min. */
  intervalMs?: number;
  /** How long one provider request may take, ms. Default 60 s. */
  requestTimeoutMs?: number;
}

export class ContactQueues {
  readonly #o: ContactQueuesOptions;
  readonly #runs = new KeyedRerun<'keep'>({ maxRuns: 10, onError: () => {} });
  #timer: TimerHandle | undefined;
  #closed = false;
  /** The current run, for tests and close(). */
  #idle: Promise<void> = Promise.resolve();

  constructor(o: ContactQueuesOptions) {
    this.#o = o;
  }

  /** A run now (or once more after the one in progress), then on the schedule. */
  start(): void {
    if (this.#closed) return;
    this.soon();
  }

  /** Asks for a run. */
  soon(): void {
    if (this.#closed) return;
    this.#runs.request('keep', async () => {
      const run = this.#keep().catch((err: unknown) => this.#o.logger.warn({ err: describeError(err) }, 'keeping contact queues failed; will try again'));
      this.#idle = run;
      await run;
      return false;
    }, () => this.#closed || this.#o.signal.aborted);
    if (this.#timer === undefined) {
      this.#timer = this.#o.clock.setTimeout(() => {
        this.#timer = undefined;
        this.soon();
      }, this.#o.intervalMs ?? 10 * 60_000);
    }
  }

  /** Resolves when the run in progress (if any) ended. */
  idle(): Promise<void> {
    return this.#idle;
  }

  async #keep(): Promise<void> {
    const { store, logger } = this.#o;
    const providers = this.#o.providers();
    const signal = () => AbortSignal.any([this.#o.signal, AbortSignal.timeout(this.#o.requestTimeoutMs ?? 60_000)]);
    for (const provider of store.contactQueues.providers().filter((p) => !providers.includes(p))) {
      for (const q of store.contactQueues.removeOursAt(provider)) {
        await this.#o.remove(provider, q.queue, signal()).catch((err: unknown) => logger.info({ provider, err: describeError(err) }, 'removing a contact queue at a former provider failed'));
      }
    }
    for (const contact of store.listContacts()) {
      if (this.#o.signal.aborted) return;
      const peer = contact.identityKey;
      if (!store.sessions.currentSession(peer)) continue;
      const have = new Map(store.contactQueues.ours(peer).map((q) => [q.provider, q]));
      for (const provider of providers) {
        if (have.has(provider)) continue;
        try {
          have.set(provider, await this.#o.create(provider, peer, signal()));
        } catch (err) {
          logger.info({ provider, err: describeError(err) }, 'creating a contact queue failed; the contact uses our public queue there for now');
        }
      }
      await this.#tellOnion(peer, contact.onion);
      const queues = providers.flatMap((p) => (have.has(p) ? [have.get(p)!] : []));
      const body = queueHandoutBody(queues);
      // Never handed any and none to hand: nothing to say.
      if (body === (store.contactQueues.handedBody(peer) ?? '')) continue;
      await this.#o.send(peer, contact.onion, queues);
      store.contactQueues.setHandedBody(peer, body, this.#o.clock.now());
      logger.info({ contact: contact.alias, queues: queues.length }, 'handed a contact its private queues at our providers');
    }
  }

  /** Tells `peer` where to dial us when that changed: our direct onion (hidden), or none any more. */
  async #tellOnion(peer: string, peerOnion: string): Promise<void> {
    const store = this.#o.store;
    const want = this.#o.directOnion?.() ?? null;
    const told = store.contactQueues.toldOnion(peer);
    if ((want ?? '') === (told ?? '') || !this.#o.sendOnion) return;
    await this.#o.sendOnion(peer, peerOnion, want);
    store.contactQueues.setToldOnion(peer, want ?? '', this.#o.clock.now());
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
