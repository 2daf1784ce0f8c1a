/**
 * Benchmarks. `npm run bench -- <name>`; each prints readable lines and then, as its last line, a
 * JSON summary. Figures are ratios against a baseline measured in the same run, plus absolute
 * numbers labelled with the machine.
 *
 *   pipeline   full message pipeline between two nodes over ws on 127.0.0.1 vs raw ws echo
 *   tor        send→receipt latency over the private Tor network vs raw ws echo on the same onion
 *   registry   cached and uncached name lookups against the dev chain
 *   sessions   session crypto per message (ratchet, tags, receipt MAC) vs. round 1's sealed box
 *   outbox     a large backlog to offline peers: queueing rate, dials, restart, drain vs pipeline
 *   abuse      an honest contact's latency while the peer listener is attacked, per attack class
 *   memory     RSS of `onionpost start` (registry, bridge, no tor) idle and after receiving 1,000 mails vs bare node
 *   cli        `onionpost status --json` against a running node vs `node -e 0`
 *   mailbox    a mailbox provider: deposits/s vs raw store commits, RSS holding mail vs idle, fetch + ack, and an offline recipient node catching up end to end vs its start → reachable
 */
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  pipeline: () => import('./pipeline.js'),
  tor: () => import('./tor.js'),
  registry: () => import('./registry.js'),
  sessions: () => import('./sessions.js'),
  outbox: () => import('./outbox.js'),
  abuse: () => import('./abuse.js'),
  memory: () => import('./memory.js'),
  cli: () => import('./cli.js'),
  mailbox: () => import('./mailbox.js'),
};

const [name, ...rest] = process.argv.slice(2);
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
const mod = await benches[name]!();
await mod.run(rest);
