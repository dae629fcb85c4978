/**
 * The machine's own latency noise: the same small piece of CPU work, run 50 times a second
 * for 10 s with nothing else of ours running, timed each time. Its p50 is what the work
 * costs; its p99 is what the machine (the hypervisor taking the virtual CPU away, other
 * processes, interrupts) adds to one run in a hundred. A latency p99 measured on the same
 * machine, such as the forward's, cannot be much below this one's p99.
 *
 * With PostgreSQL (DATABASE_URL), also the round trip to it at the same pace: `SELECT 1` on
 * one connection, 20 times a second. A forward makes two round trips (it reads the case, then
 * appends), each of which wakes an idle PostgreSQL backend and then this idle process; on a
 * virtual machine that wake-up, not the work, is what a quiet gateway's p99 is made of.
 */
import pg from 'pg';
import { type Figure, percentile } from './report.js';

const RUNS = 500;
const EVERY_MS = 20;

/** A fixed amount of arithmetic (~0.2–0.4 ms on the machines this was written on). */
function work(): number {
  let x = 0;
  for (let i = 0; i < 150_000; i++) x += Math.sqrt(i);
  return x;
}

export async function benchMachine(say: (l: string) => void): Promise<Figure[]> {
  say(`machine: the same piece of CPU work ${RUNS} times, ${1000 / EVERY_MS} a second …`);
  for (let i = 0; i < 20; i++) work(); // compiled before it is timed
  const ms: number[] = [];
  let sink = 0;
  for (let i = 0; i < RUNS; i++) {
    await new Promise((r) => setTimeout(r, EVERY_MS));
    const t0 = performance.now();
    sink += work();
    ms.push(performance.now() - t0);
  }
  if (sink === 0) say('(unreachable: keeps the work from being optimised away)');
  ms.sort((a, b) => a - b);
  const unit = `ms (a fixed piece of CPU work, ${1000 / EVERY_MS}/s for ${(RUNS * EVERY_MS) / 1000} s)`;
  return [
    { name: 'machine.noise_p50', value: round2(percentile(ms, 50)), unit },
    { name: 'machine.noise_p99', value: round2(percentile(ms, 99)), unit },
    { name: 'machine.noise_max', value: round2(ms.at(-1)!), unit },
    ...(process.env.DATABASE_URL ? await roundTrips(process.env.DATABASE_URL, say) : []),
  ];
}

const ROUND_TRIPS = 400;
const QUIET_EVERY_MS = 50;

/** `SELECT 1` to PostgreSQL at the quiet forward's pace (20/s): the floor under its p99. */
async function roundTrips(url: string, say: (l: string) => void): Promise<Figure[]> {
  say(`machine: ${ROUND_TRIPS} round trips to PostgreSQL, ${1000 / QUIET_EVERY_MS} a second …`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const ms: number[] = [];
  try {
    for (let i = 0; i < 20; i++) await client.query('SELECT 1');
    for (let i = 0; i < ROUND_TRIPS; i++) {
      await new Promise((r) => setTimeout(r, QUIET_EVERY_MS));
      const t0 = performance.now();
      await client.query('SELECT 1');
      ms.push(performance.now() - t0);
    }
  } finally {
    await client.end();
  }
  ms.sort((a, b) => a - b);
  const unit = `ms (SELECT 1 over loopback, ${1000 / QUIET_EVERY_MS}/s, one connection)`;
  return [
    { name: 'machine.db_round_trip_p50', value: round2(percentile(ms, 50)), unit },
    { name: 'machine.db_round_trip_p99', value: round2(percentile(ms, 99)), unit },
  ];
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
