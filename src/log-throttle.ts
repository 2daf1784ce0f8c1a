/**
 * A throttle for repeated warnings (re-exported by log.ts). In a module of its own, without pino,
 * so that code which only throttles (the API server, which the CLI's client shares a layer with)
 * does not load the logger's dependencies.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import type { Logger } from './log.js';

/** How often a throttled warning's repeat count is logged, ms. */
export const DEFAULT_LOG_THROTTLE_INTERVAL_MS = 60_000;
/** Distinct keys a throttle tracks at once; beyond it, warnings are counted under `(other)`. */
export const DEFAULT_LOG_THROTTLE_MAX_KEYS = 64;

/**
 * Repeated warnings, counted instead of logged one by one, so an attacker who triggers a warning
 * thousands of times a second cannot flood the log (journald, a disk) or burn CPU formatting lines.
 *
 * The first occurrence of a key is logged at once with its fields. Later occurrences within the
 * interval are only counted; when the interval ends, one summary line per key says how many there
 * were (`repeated`, `intervalMs`, and the fields of the last one). A key stays "hot" while it keeps
 * firing, so a sustained flood yields one line per interval; a key silent for a whole interval is
 * forgotten, and its next occurrence is logged at once again.
 *
 * A key names a kind of event ('connection cap reached', 'api unauthorized'), not a peer or an
 * address: keys are few and fixed. At most `maxKeys` are tracked; the rest are counted under
 * `(other)`. `close()` logs what is pending and clears the timer; it is idempotent.
 */
export interface LogThrottle {
  warn(key: string, fields: Record<string, unknown>, msg: string): void;
  /** Occurrences counted but not yet summarized, per key. */
  pending(key: string): number;
  close(): void;
}

export interface LogThrottleOptions {
  logger: Logger;
  /** Default DEFAULT_LOG_THROTTLE_INTERVAL_MS. */
  intervalMs?: number;
  /** Default DEFAULT_LOG_THROTTLE_MAX_KEYS. */
  maxKeys?: number;
  /** Level of both the first line and the summaries. Default 'warn'. */
  level?: 'warn' | 'info' | 'error';
  clock?: Clock;
}

export function createLogThrottle(opts: LogThrottleOptions): LogThrottle {
  const intervalMs = opts.intervalMs ?? DEFAULT_LOG_THROTTLE_INTERVAL_MS;
  const maxKeys = opts.maxKeys ?? DEFAULT_LOG_THROTTLE_MAX_KEYS;
  const level = opts.level ?? 'warn';
  const clock = opts.clock ?? systemClock;
  const log = opts.logger;
  const keys = new Map<string, { msg: string; fields: Record<string, unknown>; repeated: number }>();
  let timer: TimerHandle | undefined;
  let closed = false;

  function summarize(final: boolean): void {
    for (const [key, e] of keys) {
      if (e.repeated > 0) {
        log[level]({ ...e.fields, repeated: e.repeated, intervalMs }, `${e.msg} (repeated ${e.repeated} times)`);
        e.repeated = 0;
      } else keys.delete(key);
    }
    if (final) keys.clear();
  }

  function tick(): void {
    timer = undefined;
    summarize(false);
    if (keys.size > 0) timer = clock.setTimeout(tick, intervalMs);
  }

  return {
    warn(key, fields, msg) {
      if (closed) return;
      if (!keys.has(key) && keys.size >= maxKeys) key = '(other)';
      const e = keys.get(key);
      if (e) {
        e.repeated++;
        e.fields = fields;
        return;
      }
      keys.set(key, { msg: key === '(other)' ? 'other repeated warnings' : msg, fields, repeated: 0 });
      log[level](fields, msg);
      timer ??= clock.setTimeout(tick, intervalMs);
    },
    pending(key) {
      return keys.get(key)?.repeated ?? 0;
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      summarize(true);
    },
  };
}
