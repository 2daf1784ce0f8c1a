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
  /** Human-readable output (for a TTY); JSON lines otherwise. */
  pretty?: boolean;
  /** Where lines go; defaults to stderr so stdout stays clean for `--json` output. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const paths = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`]);
  const base: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths, censor: '[redacted]' },
    base: undefined,
  };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: 2, translateTime: 'HH:MM:ss' } } });
  }
  return pino(base, pino.destination(2));
}

/** A logger that discards everything (the default for tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
