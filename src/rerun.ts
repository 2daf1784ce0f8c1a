/**
 * One background job per key at a time, coalescing requests: asking for a key whose job is
 * running makes that job run once more when it ends, not once per ask. A run resolves `true` when
 * it left work for another run (a page of a longer list). Every loop is bounded by `maxRuns`.
 */
export class KeyedRerun<K> {
  readonly #running = new Map<K, { again: boolean }>();
  readonly #maxRuns: number;
  readonly #onError: (key: K, err: unknown) => void;

  constructor(opts: { maxRuns: number; onError: (key: K, err: unknown) => void }) {
    this.#maxRuns = opts.maxRuns;
    this.#onError = opts.onError;
  }

  /**
   * Runs `run()` for `key` now, or once more after the run in progress. Runs follow each other
   * while one returns true or was asked for meanwhile, and `stop()` (checked before each) is false.
   */
  request(key: K, run: () => Promise<boolean>, stop: () => boolean = () => false): void {
    const running = this.#running.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.#running.set(key, state);
    void (async () => {
      try {
        for (let i = 0; i < this.#maxRuns && !stop(); i++) {
          state.again = false;
          const more = await run();
          if (!more && !state.again) break;
        }
      } catch (err) {
        this.#onError(key, err);
      } finally {
        this.#running.delete(key);
      }
    })();
  }
}
