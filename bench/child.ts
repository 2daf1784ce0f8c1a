/**
 * A benchmark's other process: forked with an IPC channel, ready when it sends its first message,
 * stopped with `{type:'stop'}` (killed if it has not exited after `graceMs`).
 */
import { fork, type ChildProcess } from 'node:child_process';

/** Forks `script` with `args`; resolves with its first IPC message. */
export function forkReady<T>(script: string, args: string[], what: string, timeoutMs = 30_000): Promise<{ child: ChildProcess; ready: T }> {
  const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not report ready within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve({ child, ready: m as T });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited early (${code})`));
    });
  });
}

export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.send({ type: 'stop' });
  const t = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}
