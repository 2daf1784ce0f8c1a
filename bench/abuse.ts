/**
 * The peer listener under attack: for each attack class, an honest contact's send→receipt latency
 * while the attack runs, against the same run's latency without it, plus what the attack cost the
 * receiver.
 *
 *   npm run bench -- abuse [--n 15] [--rounds 3] [--attack-ms 1000] [--only ping,slots,…]
 *
 * Three processes per class, as three machines would be: the receiving node (test/fixtures/victim.ts,
 * default limits, a fresh one per class so peak RSS is per class), the honest sender (this process,
 * a node the receiver has as a contact, its connection already open), and the attacker
 * (bench/abuse-attacker.ts, test/fixtures/attacks.ts). All on 127.0.0.1, no Tor: the attacker gets
 * the whole loopback bandwidth, far more than a Tor circuit would carry.
 *
 * Per class, in `rounds` alternating rounds (so that load from elsewhere on a shared host weighs on
 * both alike): n/rounds sequential sends without the attack, then the attack starts and, after
 * `attack-ms`, n/rounds sequential sends during it; the attack stops. The attacker runs at nice 19:
 * a real attacker's CPU is on its own machine, so here it floods with what the receiver and the
 * sender leave of the host, and its achieved rate is reported. Reported: attacker rate (frames/s and connections/s it
 * achieved), receiver CPU over the attack window (% of one core), receiver peak RSS, honest latency
 * p50 (and max) with and without, and their ratio. The JSON last line has `"bench":"abuse"` and
 * `worst_latency_ratio` (the largest p50 ratio over the classes). Target: ≤ 3 for every class.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';
import { ATTACKS, type AttackName, type AttackStats } from '../test/fixtures/attacks.js';
import { startVictim, type Victim } from '../test/fixtures/victim.js';
import { numArg } from './args.js';
import { machineLabel, percentile, report, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));

interface ClassResult {
  attack: AttackName;
  frames_per_s: number;
  connections_per_s: number;
  mbytes_per_s: number;
  receiver_cpu_pct: number;
  receiver_peak_rss_mb: number;
  receiver_pid_unchanged: boolean;
  baseline_p50_ms: number;
  attack_p50_ms: number;
  attack_max_ms: number;
  delivered_during_attack: number;
  latency_ratio: number;
  attacker_closed_by_server: number;
  attacker_refused: number;
}

async function sendTimed(sender: OnionpostNode, to: string, i: number): Promise<number> {
  const t0 = performance.now();
  const r = await sender.send({ to, subject: `honest ${i}`, body: 'honest mail during the attack', wait: true, waitMs: 60_000 });
  if (r.state !== 'delivered') return Infinity;
  return performance.now() - t0;
}

async function honestRun(sender: OnionpostNode, to: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await sendTimed(sender, to, i));
  return out;
}

function startAttacker(attack: AttackName, port: number): { done: Promise<AttackStats>; stop(): void } {
  const child = fork(join(here, 'abuse-attacker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  // A real attacker's CPU is on its own machine: here it gets what the receiver and sender leave.
  if (child.pid) setPriority(child.pid, 19);
  const done = new Promise<AttackStats>((resolve, reject) => {
    child.once('message', (m: { type: string; stats: AttackStats }) => resolve(m.stats));
    child.once('exit', (code) => reject(new Error(`attacker exited (${code}) without stats`)));
  });
  child.send({ attack, port, ms: 600_000 });
  return {
    done,
    stop: () => {
      if (child.connected) child.send({ type: 'stop' });
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 10_000).unref();
    },
  };
}

async function oneClass(attack: AttackName, n: number, rounds: number, attackWarmupMs: number): Promise<ClassResult> {
  const root = mkdtempSync(join(tmpdir(), `onionpost-abuse-${attack}-`));
  let victim: Victim | undefined;
  let sender: OnionpostNode | undefined;
  let attacker: ReturnType<typeof startAttacker> | undefined;
  try {
    victim = await startVictim(root);
    sender = new OnionpostNode({
      identity: generateIdentity(), dbPath: join(root, 'sender.db'), network: loopbackNetwork(join(root, 'loopback')), logger: silentLogger(),
      selfCheckTimeoutMs: 5_000,
    });
    await sender.start();
    await victim.addContact('sender', sender.identity.onion);
    await honestRun(sender, victim.onion, 3); // connection up, bundle fetched, caches warm
    // Baseline and attack phases alternate, so that load from elsewhere on the host weighs on both alike.
    const per = Math.max(1, Math.ceil(n / rounds));
    const baseline: number[] = [];
    const during: number[] = [];
    let cpuUs = 0;
    let wallUs = 0;
    const totals = { frames: 0, opened: 0, bytes: 0, ms: 0, closedByServer: 0, refused: 0 };
    for (let r = 0; r < rounds; r++) {
      baseline.push(...(await honestRun(sender, victim.onion, per)));
      attacker = startAttacker(attack, victim.port);
      await new Promise((res) => setTimeout(res, attackWarmupMs));
      const s0 = await victim.stats();
      const t0 = performance.now();
      during.push(...(await honestRun(sender, victim.onion, per)));
      const s1 = await victim.stats();
      wallUs += (performance.now() - t0) * 1000;
      cpuUs += s1.cpuUs - s0.cpuUs;
      attacker.stop();
      const a = await attacker.done;
      attacker = undefined;
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += a[k];
      await new Promise((res) => setTimeout(res, 500)); // let the victim drop what the attack left
    }
    const s2 = await victim.stats();
    const secs = totals.ms / 1000;
    const delivered = during.filter(Number.isFinite);
    const b50 = percentile(baseline, 50);
    const d50 = delivered.length === during.length ? percentile(during, 50) : Infinity;
    return {
      attack,
      frames_per_s: round(totals.frames / secs, 0),
      connections_per_s: round(totals.opened / secs, 1),
      mbytes_per_s: round(totals.bytes / secs / 2 ** 20, 2),
      receiver_cpu_pct: round((cpuUs / wallUs) * 100, 1),
      receiver_peak_rss_mb: round(s2.peakRss / 2 ** 20, 1),
      receiver_pid_unchanged: s2.pid === victim.pid && victim.alive(),
      baseline_p50_ms: round(b50, 1),
      attack_p50_ms: round(d50, 1),
      attack_max_ms: round(Math.max(...during), 1),
      delivered_during_attack: delivered.length,
      latency_ratio: round(d50 / b50, 2),
      attacker_closed_by_server: totals.closedByServer,
      attacker_refused: totals.refused,
    };
  } finally {
    attacker?.stop();
    attacker?.done.catch(() => {});
    await sender?.close().catch(() => {});
    await victim?.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  await cryptoReady();
  const n = numArg(args, 'n', 15);
  const rounds = numArg(args, 'rounds', 3);
  const warmup = numArg(args, 'attack-ms', 1000);
  const onlyArg = args.find((a) => a.startsWith('--only'));
  const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(',') : undefined;
  const classes = (Object.keys(ATTACKS) as AttackName[]).filter((c) => !only || only.includes(c));
  const results: ClassResult[] = [];
  const lines: string[] = [];
  for (const c of classes) {
    let r: ClassResult;
    try {
      r = await oneClass(c, n, rounds, warmup);
    } catch (err) {
      // The receiver stopped answering (or died): that class failed outright.
      console.error(`${c}: ${err instanceof Error ? err.message : String(err)}`);
      r = {
        attack: c, frames_per_s: NaN, connections_per_s: NaN, mbytes_per_s: NaN, receiver_cpu_pct: NaN, receiver_peak_rss_mb: NaN,
        receiver_pid_unchanged: false, baseline_p50_ms: NaN, attack_p50_ms: Infinity, attack_max_ms: Infinity, delivered_during_attack: 0,
        latency_ratio: Infinity, attacker_closed_by_server: 0, attacker_refused: 0,
      };
    }
    results.push(r);
    const line =
      `${c.padEnd(9)} attacker ${String(r.frames_per_s).padStart(7)} frames/s ${String(r.connections_per_s).padStart(7)} conn/s ${String(r.mbytes_per_s).padStart(6)} MB/s | ` +
      `receiver CPU ${String(r.receiver_cpu_pct).padStart(5)} % peak RSS ${String(r.receiver_peak_rss_mb).padStart(6)} MB | ` +
      `honest p50 ${r.baseline_p50_ms} ms → ${r.attack_p50_ms} ms (max ${r.attack_max_ms}) ×${r.latency_ratio}` +
      `${Number.isNaN(r.frames_per_s) ? ' FAILED (the error is above)' : r.receiver_pid_unchanged ? '' : ' RECEIVER DIED'}`;
    console.error(line);
    lines.push(line);
  }
  const worst = Math.max(...results.map((r) => r.latency_ratio));
  lines.unshift(
    `abuse: ${n} honest sends without and ${n} during each attack (after ${warmup} ms of it), in ${rounds} alternating rounds; receiver with default limits; three processes on 127.0.0.1, the attacker at nice 19; ${machineLabel()}`,
  );
  lines.push(`worst honest-latency ratio (p50 during / p50 without): ×${worst} (target ≤ 3)`);
  report(lines, { bench: 'abuse', worst_latency_ratio: worst, target_ratio: 3, n, classes: results, machine: machineLabel() });
}
