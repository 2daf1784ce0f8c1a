/** `--name value` / `--name=value` arguments for benchmarks, with numeric defaults. */
export function numArg(args: readonly string[], name: string, dflt: number): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let v: string | undefined;
    if (a === `--${name}`) v = args[i + 1];
    else if (a.startsWith(`--${name}=`)) v = a.slice(name.length + 3);
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} wants a non-negative number, got "${v}"`);
    return n;
  }
  return dflt;
}

/** `--name value` / `--name=value` as a string, or undefined when absent. */
export function strArg(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) return args[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}
