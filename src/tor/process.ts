/**
 * Finding, checking, launching and owning the node's tor process.
 *
 *   findTor → checkTor → launchTor:
 *     write <dataDir>/tor/torrc (0700 dir) from tor/node.torrc (+ tor/testnet/node.torrc on a test net)
 *     spawn tor -f torrc ─ poll <dataDir>/tor/control.port ─ connect ─ authenticate (SAFECOOKIE)
 *     ─ TAKEOWNERSHIP ─ wait bootstrap 100 % (STATUS_CLIENT events + GETINFO status/bootstrap-phase)
 *     ─ GETINFO net/listeners/socks → TorProcess
 *   Any failure on the way kills the child (SIGKILL) and waits for it before rethrowing.
 *
 * After TAKEOWNERSHIP tor exits as soon as `TorProcess.control` closes, so the control connection
 * lives exactly as long as the TorProcess. Non-detached onions added on it die with it too.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { access, chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { sleep, systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { connectControl, parseBootstrap, type BootstrapStatus, type TorControl } from './control.js';
import { TorError } from './errors.js';
import { readQuoted } from './reply.js';
import { checkTorrcLines, readTemplate, renderTorrc } from './torrc.js';

/** What a node tor needs to join a private test network (see testnet.ts). */
export interface TestNetworkInfo {
  /** Values of the `DirAuthority` lines: `auth0 orport=… no-v2 v3ident=… 127.0.0.1:<dirport> <fingerprint>`. */
  dirAuthorities: string[];
}

export interface TorVersion {
  major: number;
  minor: number;
  micro: number;
  patch: number;
  /** e.g. "alpha", "rc", "dev"; empty for a stable release. */
  status: string;
  /** As tor prints it, e.g. "0.4.9.11". */
  text: string;
}

export interface TorFeatures {
  /** ADD_ONION PoWDefensesEnabled=1: tor ≥ 0.4.9.2 built with the pow module. */
  pow: boolean;
}

export interface TorCheck {
  path: string;
  version: TorVersion;
  features: TorFeatures;
}

/** Oldest tor we run: 0.4.8 (vanguards-lite, conflux, current onion-service code). */
export const MIN_TOR_VERSION = '0.4.8.0';
/** First tor whose ADD_ONION accepts PoWDefensesEnabled. */
export const POW_TOR_VERSION = '0.4.9.2';

/** Parses `tor --version` output ("Tor version 0.4.9.11." / "Tor version 0.4.9.2-alpha (git-…)."). */
export function parseTorVersion(output: string): TorVersion | null {
  const m = /Tor version (\d+)\.(\d+)\.(\d+)(?:\.(\d+))?(?:-([A-Za-z0-9]+))?/.exec(output);
  if (!m) return null;
  const [major, minor, micro, patch] = [m[1], m[2], m[3], m[4] ?? '0'].map(Number) as [number, number, number, number];
  const status = m[5] ?? '';
  return { major, minor, micro, patch, status, text: `${major}.${minor}.${micro}.${patch}${status ? '-' + status : ''}` };
}

/** Compares versions by number only (0.4.9.2-alpha == 0.4.9.2). */
export function compareTorVersions(a: TorVersion | string, b: TorVersion | string): number {
  const va = typeof a === 'string' ? parseTorVersion(`Tor version ${a}`)! : a;
  const vb = typeof b === 'string' ? parseTorVersion(`Tor version ${b}`)! : b;
  return va.major - vb.major || va.minor - vb.minor || va.micro - vb.micro || va.patch - vb.patch;
}

/** Features of a tor version, given `tor --list-modules` output (when known). */
export function torFeatures(version: TorVersion, modules?: string): TorFeatures {
  const powModule = modules === undefined ? true : /^pow: yes$/m.test(modules);
  return { pow: compareTorVersions(version, POW_TOR_VERSION) >= 0 && powModule };
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the tor binary: the configured path (which must exist), else `tor` on PATH, else
 * /usr/sbin/tor (Debian puts it there, often off a user's PATH). Throws TorError TOR_NOT_FOUND.
 */
export async function findTor(opts: { torPath?: string; path?: string } = {}): Promise<string> {
  if (opts.torPath) {
    if (await isExecutable(opts.torPath)) return opts.torPath;
    throw new TorError('TOR_NOT_FOUND', `tor not found at the configured path ${opts.torPath}`);
  }
  for (const dir of (opts.path ?? process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && (await isExecutable(join(dir, 'tor')))) return join(dir, 'tor');
  }
  if (await isExecutable('/usr/sbin/tor')) return '/usr/sbin/tor';
  throw new TorError('TOR_NOT_FOUND', 'tor not found (on PATH or in /usr/sbin); install it: sudo apt-get install tor');
}

function run(path: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(path, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      if (err) reject(err);
      else resolvePromise(stdout);
    });
  });
}

/**
 * Runs `tor --version` and `tor --list-modules` and refuses tors we do not support.
 * `require: ['pow']` also refuses a tor without PoW. Throws TOR_TOO_OLD naming what is missing.
 */
export async function checkTor(path: string, opts: { require?: readonly (keyof TorFeatures)[] } = {}): Promise<TorCheck> {
  let out: string;
  try {
    out = await run(path, ['--version'], 10_000);
  } catch (err) {
    throw new TorError('TOR_NOT_FOUND', `cannot run ${path} --version`, { cause: err });
  }
  const version = parseTorVersion(out);
  if (!version) throw new TorError('TOR_VERSION_UNKNOWN', `cannot read the version of ${path}: ${out.split('\n')[0] ?? ''}`);
  const modules = await run(path, ['--list-modules'], 10_000).catch(() => undefined);
  const features = torFeatures(version, modules);
  const missing: string[] = [];
  if (compareTorVersions(version, MIN_TOR_VERSION) < 0) missing.push(`tor ${MIN_TOR_VERSION.slice(0, 5)} or newer`);
  for (const f of opts.require ?? []) if (!features[f]) missing.push(`${f} (tor ≥ ${POW_TOR_VERSION} with the pow module)`);
  if (missing.length) throw new TorError('TOR_TOO_OLD', `tor ${version.text} at ${path} lacks: ${missing.join(', ')}`);
  return { path, version, features };
}

export interface LaunchTorOptions {
  torPath?: string;
  /** The node's data dir; tor gets `<dataDir>/tor` (mode 0700). Absolute or relative to cwd. */
  dataDir: string;
  /** Join this private test network instead of the real Tor network. */
  network?: TestNetworkInfo;
  /** More torrc lines, appended verbatim (one option per line). */
  extraTorrc?: string[];
  /** Deadline for 100 % bootstrap, ms. Default 60 000. */
  bootstrapTimeoutMs?: number;
  /** Deadline for tor to write its control port file, ms. Default 30 000. */
  controlPortTimeoutMs?: number;
  onProgress?: (p: { progress: number; tag: string; summary: string }) => void;
  logger?: Logger;
  signal?: AbortSignal;
  /** Refuse to start without these features (TOR_TOO_OLD). */
  require?: readonly (keyof TorFeatures)[];
  /** Override the tor/ templates directory. */
  templatesDir?: string;
  /** Times every wait here (deadlines, polls, the SIGKILL fallback of close()). Default systemClock. */
  clock?: Clock;
}

export interface TorExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The torrc launchTor writes: tor/node.torrc (+ tor/testnet/node.torrc when joining a test network) + extras. */
export function renderNodeTorrc(opts: { torDir: string; ownerPid: number; network?: TestNetworkInfo; extraTorrc?: readonly string[]; templatesDir?: string }): string {
  const d = opts.torDir;
  let text = renderTorrc(readTemplate('node.torrc', opts.templatesDir), {
    dataDir: d,
    controlPortFile: join(d, 'control.port'),
    cookieFile: join(d, 'control_auth_cookie'),
    ownerPid: opts.ownerPid,
    logFile: join(d, 'notice.log'),
  });
  if (opts.network) {
    if (opts.network.dirAuthorities.length === 0) throw new TorError('BAD_ARGUMENT', 'a test network needs DirAuthority lines');
    text += renderTorrc(readTemplate('testnet/node.torrc', opts.templatesDir), { dirAuthorities: opts.network.dirAuthorities });
  }
  if (opts.extraTorrc?.length) {
    checkTorrcLines(opts.extraTorrc);
    text += opts.extraTorrc.join('\n') + '\n';
  }
  return text;
}

/** A running, owned, bootstrapped tor. */
export class TorProcess extends EventEmitter<{ exit: [TorExit] }> {
  readonly pid: number;
  readonly socksPort: number;
  readonly controlPort: number;
  readonly version: TorVersion;
  readonly features: TorFeatures;
  /** The owning control connection: closing it stops tor. Use it for ADD_ONION etc. */
  readonly control: TorControl;
  /** `<dataDir>/tor`. */
  readonly torDir: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<TorExit>;
  readonly #child: ChildProcess;
  readonly #clock: Clock;
  #closing: Promise<void> | null = null;

  /** Use launchTor(). */
  constructor(init: { child: ChildProcess; exited: Promise<TorExit>; socksPort: number; controlPort: number; check: TorCheck; control: TorControl; torDir: string; clock: Clock }) {
    super();
    this.#child = init.child;
    this.#clock = init.clock;
    this.pid = init.child.pid!;
    this.socksPort = init.socksPort;
    this.controlPort = init.controlPort;
    this.version = init.check.version;
    this.features = init.check.features;
    this.control = init.control;
    this.torDir = init.torDir;
    this.exited = init.exited;
    void this.exited.then((e) => {
      this.control.destroy();
      this.emit('exit', e);
    });
  }

  /** True once the process has exited. */
  get hasExited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /** Sends a signal (tests use SIGKILL to simulate a crash). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.hasExited) this.#child.kill(signal);
  }

  /** Stops tor: SIGTERM, SIGKILL after 3 s, waits for the exit. Same promise on every call. */
  close(): Promise<void> {
    this.#closing ??= stopChild(this.#child, this.exited, this.#clock).then(() => this.control.close());
    return this.#closing;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<TorExit>, clock: Clock): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: TimerHandle | undefined;
  const forced = new Promise<void>((r) => {
    timer = clock.setTimeout(() => {
      child.kill('SIGKILL');
      r();
    }, 3000);
  });
  await Promise.race([exited, forced]);
  clock.clearTimeout(timer!);
  await exited;
}

/** A promise that rejects when the signal aborts or the deadline passes; `cancel()` clears both. */
function deadline(clock: Clock, ms: number, signal: AbortSignal | undefined, onTimeout: () => Error): { promise: Promise<never>; cancel: () => void } {
  let timer: TimerHandle | undefined;
  let onAbort: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(onTimeout()), ms);
    if (signal) {
      onAbort = () => reject(new TorError('ABORTED', 'tor launch aborted'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  promise.catch(() => {}); // raced below; an unraced rejection is not an error
  return {
    promise,
    cancel: () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** Parses ControlPortWriteToFile's content (`PORT=127.0.0.1:9051`). */
export function parseControlPortFile(text: string): number | null {
  const m = /^PORT=127\.0\.0\.1:(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parses GETINFO net/listeners/socks (`"127.0.0.1:9050" "unix:/…"`) to the first loopback TCP port. */
export function parseSocksListeners(value: string): number | null {
  let i = 0;
  while (i < value.length) {
    if (value[i] === ' ') {
      i++;
      continue;
    }
    let item: string;
    if (value[i] === '"') {
      const q = readQuoted(value, i);
      item = q.value;
      i = q.end;
    } else {
      const sp = value.indexOf(' ', i);
      item = value.slice(i, sp < 0 ? undefined : sp);
      i = sp < 0 ? value.length : sp;
    }
    const m = /^127\.0\.0\.1:(\d+)$/.exec(item);
    if (m) return Number(m[1]);
  }
  return null;
}

/** Starts an owned tor and waits for 100 % bootstrap. See the file comment for the sequence. */
export async function launchTor(opts: LaunchTorOptions): Promise<TorProcess> {
  const log = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  const torPath = await findTor(opts.torPath ? { torPath: opts.torPath } : {});
  const check = await checkTor(torPath, opts.require ? { require: opts.require } : {});
  const dataDir = isAbsolute(opts.dataDir) ? opts.dataDir : resolve(opts.dataDir);
  const torDir = join(dataDir, 'tor');
  await mkdir(torDir, { recursive: true, mode: 0o700 });
  await chmod(torDir, 0o700);
  const portFile = join(torDir, 'control.port');
  await rm(portFile, { force: true });
  const torrcPath = join(torDir, 'torrc');
  const torrcOpts: Parameters<typeof renderNodeTorrc>[0] = { torDir, ownerPid: process.pid };
  if (opts.network) torrcOpts.network = opts.network;
  if (opts.extraTorrc) torrcOpts.extraTorrc = opts.extraTorrc;
  if (opts.templatesDir) torrcOpts.templatesDir = opts.templatesDir;
  await writeFile(torrcPath, renderNodeTorrc(torrcOpts), { mode: 0o600 });
  if (opts.signal?.aborted) throw new TorError('ABORTED', 'tor launch aborted');

  const child = spawn(torPath, ['-f', torrcPath, '--defaults-torrc', join(torDir, 'torrc-defaults-none'), '--ignore-missing-torrc'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Tor prints config errors to stdout before its log file is open; keep the tail for error messages.
  const tail: string[] = [];
  const keep = (d: Buffer) => {
    for (const l of d.toString('utf8').split('\n')) if (l.trim()) tail.push(l.trim());
    tail.splice(0, Math.max(0, tail.length - 8));
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<TorExit>((r) => {
    child.once('exit', (code, signal) => r({ code, signal }));
    child.once('error', (err) => {
      tail.push(err.message);
      if (child.pid === undefined) r({ code: null, signal: null });
    });
  });
  const exitError = exited.then((e): never => {
    throw new TorError('TOR_EXITED', `tor exited during start-up (code ${e.code}, signal ${e.signal}): ${tail.slice(-3).join(' | ')}`);
  });
  exitError.catch(() => {}); // raced below

  const bootstrapTimeoutMs = opts.bootstrapTimeoutMs ?? 60_000;
  let control: TorControl | undefined;
  const cleanups: (() => void)[] = [];
  try {
    if (child.pid === undefined) await exitError;
    log.info({ pid: child.pid, version: check.version.text, torDir }, 'tor started');

    // 1. The control port file.
    const cpDeadline = deadline(clock, opts.controlPortTimeoutMs ?? 30_000, opts.signal, () => new TorError('CONTROL_PORT_UNREACHABLE', `tor did not write ${portFile} in time`));
    cleanups.push(cpDeadline.cancel);
    const controlPort = await Promise.race([
      (async () => {
        for (;;) {
          const text = await readFile(portFile, 'utf8').catch(() => '');
          const port = parseControlPortFile(text);
          if (port) return port;
          await sleep(clock, 50);
        }
      })(),
      cpDeadline.promise,
      exitError,
    ]);
    cpDeadline.cancel();

    // 2. Connect, authenticate, own.
    control = await Promise.race([
      connectControl({ port: controlPort, timeoutMs: 10_000, logger: log, clock, ...(opts.signal ? { signal: opts.signal } : {}) }),
      exitError,
    ]).catch((err) => {
      throw err instanceof TorError ? err : new TorError('CONTROL_PORT_UNREACHABLE', `cannot connect to tor's control port ${controlPort}`, { cause: err });
    });
    const ctl = control;
    await Promise.race([ctl.authenticate({ cookieFile: join(torDir, 'control_auth_cookie') }), exitError]);
    await ctl.takeOwnership();
    // Ownership now rides on this connection; the PID watch is redundant (stem does the same).
    await ctl.resetConf(['__OwningControllerProcess']);

    // 3. Bootstrap.
    const bsDeadline = deadline(clock, bootstrapTimeoutMs, opts.signal, () => new TorError('BOOTSTRAP_TIMEOUT', `tor did not finish bootstrapping within ${bootstrapTimeoutMs} ms (last: ${last ? `${last.progress}% ${last.summary}` : 'none'})`));
    cleanups.push(bsDeadline.cancel);
    let last: BootstrapStatus | undefined;
    let reached!: () => void;
    const done = new Promise<void>((r) => (reached = r));
    const seen = (b: BootstrapStatus) => {
      if (!last || last.progress !== b.progress || last.tag !== b.tag) {
        last = b;
        log.debug({ progress: b.progress, tag: b.tag }, 'tor bootstrap');
        opts.onProgress?.({ progress: b.progress, tag: b.tag, summary: b.summary });
      }
      if (b.progress === 100) reached();
    };
    ctl.on('bootstrap', seen);
    cleanups.push(() => ctl.off('bootstrap', seen));
    await ctl.addEvents(['STATUS_CLIENT']);
    let polling = true;
    cleanups.push(() => (polling = false));
    // Events carry progress; a slow poll covers a missed event (and the state before SETEVENTS).
    const poll = (async () => {
      while (polling) {
        const info = await ctl.getInfo(['status/bootstrap-phase']);
        const b = parseBootstrap(info.get('status/bootstrap-phase') ?? '');
        if (b) seen(b);
        if (b?.progress === 100) return;
        await sleep(clock, 1000);
      }
    })().catch(async (err: unknown) => {
      // A dying tor breaks the connection first; let TOR_EXITED win the race when that is the cause.
      await sleep(clock, 300);
      throw err;
    });
    await Promise.race([done, poll, bsDeadline.promise, exitError]);
    polling = false;
    await ctl.setEvents([]);

    // 4. Ports and version.
    const info = await ctl.getInfo(['net/listeners/socks']);
    const socksPort = parseSocksListeners(info.get('net/listeners/socks') ?? '');
    if (!socksPort) throw new TorError('CONTROL_PORT_UNREACHABLE', 'tor reports no loopback SOCKS listener');
    for (const c of cleanups) c();
    log.info({ pid: child.pid, socksPort, controlPort }, 'tor bootstrapped');
    return new TorProcess({ child, exited, socksPort, controlPort, check, control: ctl, torDir, clock });
  } catch (err) {
    for (const c of cleanups) c();
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
    await exited;
    control?.destroy();
    log.warn({ err: err instanceof Error ? err.message : String(err) }, 'tor failed to start');
    throw err;
  }
}

/** Reads tor's notice log tail (for diagnostics in errors and tests). */
export async function torLogTail(torDir: string, lines = 20): Promise<string[]> {
  const text = await readFile(join(torDir, 'notice.log'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).slice(-lines);
}
