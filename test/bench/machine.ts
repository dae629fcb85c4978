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
 * virtual machine that wake-up, not the work, is what a quiet gateway's p99 is made of. Each
 * `SELECT 1` is followed by a durable commit of one 4 KB row (the size of an outbox row), which
 * waits for the WAL to reach the disk as a forward's append does: the pair is the least a
 * forward can take on this machine, whatever the gateway does between and around them.
 */
import { randomBytes } from 'node:crypto';
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

/**
 * `SELECT 1` to PostgreSQL at the quiet forward's pace (20/s), each followed by the durable
 * commit of one row: the floor under the forward's p99.
 */
async function roundTrips(url: string, say: (l: string) => void): Promise<Figure[]> {
  say(`machine: ${ROUND_TRIPS} round trips and commits to PostgreSQL, ${1000 / QUIET_EVERY_MS} a second …`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const schema = `bench_machine_${randomBytes(4).toString('hex')}`;
  const row = 'x'.repeat(4096);
  const read: number[] = [];
  const commit: number[] = [];
  const pair: number[] = [];
  try {
    await client.query(
      `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.rows (id bigserial PRIMARY KEY, v text)`,
    );
    const insert = { name: 'commit', text: `INSERT INTO ${schema}.rows (v) VALUES ($1)`, values: [row] };
    for (let i = 0; i < 20; i++) {
      await client.query('SELECT 1');
      await client.query(insert);
    }
    for (let i = 0; i < ROUND_TRIPS; i++) {
      await new Promise((r) => setTimeout(r, QUIET_EVERY_MS));
      const t0 = performance.now();
      await client.query('SELECT 1');
      const t1 = performance.now();
      await client.query(insert);
      const t2 = performance.now();
      read.push(t1 - t0);
      commit.push(t2 - t1);
      pair.push(t2 - t0);
    }
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await client.end();
  }
  for (const ms of [read, commit, pair]) ms.sort((a, b) => a - b);
  const pace = `${1000 / QUIET_EVERY_MS}/s, one connection`;
  const readUnit = `ms (SELECT 1 over loopback, ${pace})`;
  const commitUnit = `ms (INSERT of one 4 KB row, committed to disk, right after the SELECT 1, ${pace})`;
  return [
    { name: 'machine.db_round_trip_p50', value: round2(percentile(read, 50)), unit: readUnit },
    { name: 'machine.db_round_trip_p99', value: round2(percentile(read, 99)), unit: readUnit },
    { name: 'machine.db_commit_p50', value: round2(percentile(commit, 50)), unit: commitUnit },
    { name: 'machine.db_commit_p99', value: round2(percentile(commit, 99)), unit: commitUnit },
    {
      name: 'machine.db_read_then_commit_p99',
      value: round2(percentile(pair, 99)),
      unit: `ms (the two together: the least a forward's read and append can take, ${pace})`,
    },
  ];
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
