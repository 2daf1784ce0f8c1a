/** Small statistics helpers for benchmarks: percentiles over recorded samples, machine label. */
import { cpus, totalmem } from 'node:os';

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function machineLabel(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
}

/** Prints the human lines, then the JSON summary as the last line (what scripts parse). */
export function report(lines: string[], summary: Record<string, unknown>): void {
  for (const l of lines) console.log(l);
  console.log(JSON.stringify(summary));
}
