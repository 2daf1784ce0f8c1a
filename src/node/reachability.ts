/**
 * Whether our own onion answers: the node is "reachable" only after a self-check dialled our onion
 * through the network and got our own bundle back. It stops being reachable the moment the network
 * reports our tor gone (no grace period), and a new check starts once the onion is re-published.
 *
 * Self-check schedule: try; on failure wait min(1 s × attempt, 5 s) on the injected clock; stop
 * after `timeoutMs` (clock time) or when closed. Only the latest check may set reachable.
 */
import { sleep, type Clock } from '../clock.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

export interface ReachabilityOptions {
  /** One try: resolves when our onion answered as us; rejects otherwise. Must honour `signal`. */
  probe(signal: AbortSignal): Promise<void>;
  clock: Clock;
  logger: Logger;
  /** How long a self-check keeps trying, ms. */
  timeoutMs: number;
  /** Told each time reachability changes. */
  onChange(reachable: boolean): void;
}

/** The wait after failed try number `attempt` (1-based), ms. */
export function selfCheckDelay(attempt: number): number {
  return Math.min(1000 * attempt, 5000);
}

export class Reachability {
  readonly #o: ReachabilityOptions;
  #reachable = false;
  #current: AbortController | undefined;
  #closed = false;

  constructor(o: ReachabilityOptions) {
    this.#o = o;
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  /** Starts a self-check (replacing one still running). Resolves when it ends; never rejects. */
  check(): Promise<void> {
    this.#current?.abort();
    if (this.#closed) return Promise.resolve();
    const run = new AbortController();
    this.#current = run;
    return this.#run(run.signal);
  }

  /** Our onion is gone (tor exited, or restarting): not reachable from now until a new check passes. */
  lost(): void {
    this.#current?.abort();
    this.#current = undefined;
    this.#set(false);
  }

  /** Stops any check; idempotent. */
  close(): void {
    this.#closed = true;
    this.#current?.abort();
  }

  #set(reachable: boolean): void {
    if (this.#reachable === reachable) return;
    this.#reachable = reachable;
    this.#o.onChange(reachable);
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { clock, logger } = this.#o;
    const deadline = clock.now() + this.#o.timeoutMs;
    for (let attempt = 1; !signal.aborted && clock.now() < deadline; attempt++) {
      try {
        await this.#o.probe(signal);
        if (signal.aborted) return;
        logger.info({ attempt }, 'our onion is reachable');
        this.#set(true);
        return;
      } catch (err) {
        logger.debug({ attempt, err: describeError(err) }, 'self-check: not reachable yet');
        await sleep(clock, selfCheckDelay(attempt), signal);
      }
    }
    if (!signal.aborted) logger.warn('our onion did not become reachable within the self-check window');
  }
}
