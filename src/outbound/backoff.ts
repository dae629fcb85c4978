/**
 * Capped exponential backoff with jitter, as a pure function (BullMQ's backoffs.ts shape):
 * attempt 1 waits about `base`, each further attempt doubles, never above `max`. Half the
 * delay is fixed and half random ("equal jitter"), so retries after a partner outage spread
 * out instead of arriving together, while the wait never drops below half the schedule.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: number = Math.random(),
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 40)));
  return Math.round(exp / 2 + (exp / 2) * random);
}
