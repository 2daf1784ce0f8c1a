/**
 * Logging. Every layer receives a pino Logger (a child of the node's, with `layer` set) and never
 * creates its own. Key material must never reach a log line: the field names below are redacted at
 * any depth pino can address, and callers must not interpolate secrets into messages.
 */
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

/** Field names whose values are replaced by "[redacted]" wherever they appear (top level or one level down). */
export const REDACTED_FIELDS = [
  'seed', 'secret', 'secretKey', 'privateKey', 'passphrase', 'password', 'token', 'cookie',
  'authorization', 'expandedSecretKey', 'keyBlob', 'tronPrivateKey',
] as const;

export interface LoggerOptions {
  level?: pino.LevelWithSilent;
  /** Where lines go (see `logDestination`); defaults to JSON lines on stderr, so stdout stays clean for human and `--json` output. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const paths = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`]);
  const base: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths, censor: '[redacted]' },
    base: undefined,
  };
  return pino(base, opts.destination ?? pino.destination(2));
}

/**
 * Where a long-running command (start, sandbox) sends its log, so that log lines and the command's
 * human output (on stdout) never mix into one stream of JSON and prose:
 * - `file`: JSON lines appended to that file (created 0600);
 * - else, when stderr is a terminal: readable lines on stderr, formatted in this thread by
 *   pino-pretty (a dev dependency, loaded only here; without it, JSON lines);
 * - else (journald, a pipe): JSON lines on stderr.
 */
export async function logDestination(opts: { file?: string; stderrIsTTY?: boolean } = {}): Promise<DestinationStream> {
  if (opts.file) return pino.destination({ dest: opts.file, append: true, sync: false, mode: 0o600 });
  if (opts.stderrIsTTY ?? process.stderr.isTTY) {
    try {
      const { default: pretty } = await import('pino-pretty');
      return pretty({ destination: 2, sync: true, translateTime: 'HH:MM:ss', ignore: 'layer', messageFormat: '{if layer}{layer}: {end}{msg}' });
    } catch {
      // not installed (production install without dev dependencies): JSON lines instead
    }
  }
  return pino.destination(2);
}

/** A logger that discards everything (the default for tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export {
  createLogThrottle, DEFAULT_LOG_THROTTLE_INTERVAL_MS, DEFAULT_LOG_THROTTLE_MAX_KEYS, type LogThrottle, type LogThrottleOptions,
} from './log-throttle.js';
