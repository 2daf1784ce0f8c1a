/**
 * Group commit: rows that arrive together (inbound DELIVERs, outgoing sends) are written in one
 * SQLite transaction (one fsync under synchronous=FULL) instead of one each. Each caller still gets
 * its own result only after the transaction holding its row has committed, so no receipt ever
 * precedes its commit. If a batch fails, each item is written again on its own, so one bad row
 * fails only its own caller.
 */
export class GroupCommitter<In, Out> {
  readonly #write: (items: In[]) => Out[];
  readonly #maxBatch: number;
  #pending: { item: In; resolve: (o: Out) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  /** `write` commits the whole batch atomically and returns one result per item, in order. */
  constructor(write: (items: In[]) => Out[], maxBatch = 256) {
    this.#write = write;
    this.#maxBatch = maxBatch;
  }

  commit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        // After the current I/O callbacks: every frame already read joins this batch.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    let results: Out[];
    try {
      results = this.#write(batch.map((b) => b.item));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      for (const b of batch) {
        try {
          b.resolve(this.#write([b.item])[0]!);
        } catch (e) {
          b.reject(e);
        }
      }
      return;
    }
    batch.forEach((b, i) => b.resolve(results[i]!));
  }
}
