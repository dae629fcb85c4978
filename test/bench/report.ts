export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The target it is compared with, e.g. ">= 300". */
  limit?: string;
}

export function printFigure(f: Figure, json: boolean): void {
  if (json)
    console.log(JSON.stringify({ name: f.name, value: f.value, unit: f.unit, limit: f.limit ?? null }));
  else
    console.log(
      `${f.name.padEnd(44)} ${String(f.value).padStart(10)} ${f.unit}${f.limit ? `   (target ${f.limit})` : ''}`,
    );
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Run `fn` repeatedly with `concurrency` in flight for `ms`; returns completed count per second. */
export async function ratePerSecond(
  fn: () => Promise<unknown>,
  ms: number,
  concurrency = 1,
): Promise<number> {
  const end = performance.now() + ms;
  let n = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await fn();
        n++;
      }
    }),
  );
  return Math.round(n / ((performance.now() - start) / 1000));
}
