/**
 * The attacker of `bench/abuse.ts`, in a process of its own (so its CPU is not the honest
 * sender's). Started with an IPC channel; told `{attack, port, ms, connections?}`, it attacks the
 * port for `ms` (or until told `{type:'stop'}`) and answers with its AttackStats, then exits.
 *
 *   node dist/bench/abuse-attacker.js   (started by bench/abuse.ts)
 */
import { runAttack, type AttackName } from '../test/fixtures/attacks.js';

interface Order {
  attack: AttackName;
  port: number;
  ms: number;
  connections?: number;
}

process.once('message', (m: Order) => {
  const controller = new AbortController();
  process.on('message', (x: { type?: string }) => {
    if (x?.type === 'stop') controller.abort();
  });
  const timer = setTimeout(() => controller.abort(), m.ms);
  process.once('disconnect', () => controller.abort());
  runAttack(m.attack, { port: m.port }, { signal: controller.signal, ...(m.connections ? { connections: m.connections } : {}) }).then(
    (stats) => {
      clearTimeout(timer);
      process.send!({ type: 'done', stats }, () => process.exit(0));
    },
    (err: unknown) => {
      console.error('abuse-attacker:', err);
      process.exit(1);
    },
  );
});
