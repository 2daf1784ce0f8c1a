/**
 * The node's event bus: what the API pushes to WebSocket subscribers (the web UI) and what
 * `messages.send --wait` listens to.
 *
 *   message.received   {id, from, subject, kind}
 *   message.state      {id, state, reason?}
 *   tor.status         NetworkStatus & {reachable}
 *   contact.keyChange  {alias, reason}
 *   session.reset      {peer, alias, messages, reason}  a contact's node no longer knew our session
 *                      (e.g. it restored a backup): queued mail is encrypted again, no key changed
 *   mailbox.fetched    {provider, messages}  mail fetched from one of our mailbox providers
 *   mailbox.lapsing    {provider, state: due|grace|lapsed, paidUntil, servedUntil, message}  a priced
 *                      provider of ours is paid for 7 days or less, or no longer (once a day per provider)
 *   mailbox.replaced   {dropped, added, reason, at}  one of our providers replaced (mailbox-review.ts)
 *   mailbox.added      {provider, reason}  subscribed at a directory provider to reach the directory policy's target
 *   mailbox.warning    {provider?, reason, message}  a provider to replace with none available, or fewer than the target
 */
import type { ApiEvent, EventSource } from '../api/index.js';

export class EventBus implements EventSource {
  readonly #listeners = new Set<(ev: ApiEvent) => void>();

  subscribe(listener: (ev: ApiEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  emit(ev: ApiEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(ev);
      } catch {
        // A failing subscriber (a closed socket) must not stop the others.
      }
    }
  }
}
