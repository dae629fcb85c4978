/**
 * Circuit breaker of one partner, as a small state machine with no I/O (the lanes drive it):
 * - `closed`: messages are sent; consecutive transient failures are counted, a success or
 *   a permanent answer (the partner is up, it refused one message) resets the count;
 * - `open` after `threshold` consecutive transient failures: nothing is sent; the partner is
 *   probed (`GET /v1/ping`) every `probeIntervalMs`;
 * - a probe that answers closes it again and sending resumes.
 * Messages wait in the outbox meanwhile; only their `maxAgeSeconds` can make them dead.
 */
export type CircuitState = 'closed' | 'open';

export interface CircuitSnapshot {
  state: CircuitState;
  consecutiveFailures: number;
  openedAt?: string;
  lastProbeAt?: string;
  lastProbeError?: string;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private lastProbeAt: number | undefined;
  private lastProbeError: string | undefined;

  constructor(
    private readonly threshold: number,
    private readonly probeIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    return this.openedAt === undefined ? 'closed' : 'open';
  }

  /** May a message be sent now? */
  allows(): boolean {
    return this.openedAt === undefined;
  }

  /** Record an attempt's result; returns the new state when it changed. */
  record(result: 'success' | 'permanent' | 'transient'): CircuitState | undefined {
    if (result !== 'transient') {
      this.failures = 0;
      return undefined;
    }
    this.failures += 1;
    if (this.openedAt === undefined && this.failures >= this.threshold) {
      this.openedAt = this.now();
      return 'open';
    }
    return undefined;
  }

  /** Is a probe due (open, and the interval since the last probe or the opening has passed)? */
  probeDue(): boolean {
    if (this.openedAt === undefined) return false;
    return this.now() - (this.lastProbeAt ?? this.openedAt) >= this.probeIntervalMs;
  }

  /** Record a probe; returns 'closed' when it closed the circuit. */
  probed(error: string | undefined): CircuitState | undefined {
    this.lastProbeAt = this.now();
    this.lastProbeError = error;
    if (error !== undefined) return undefined;
    return this.reset();
  }

  /**
   * Another replica opened the partner's circuit at `openedAt` (shared-circuit.ts): open this
   * one too, as of then, so it stops sending. Returns 'open' when it was closed.
   */
  adopt(openedAt: number): CircuitState | undefined {
    if (this.openedAt !== undefined) return undefined;
    this.openedAt = openedAt;
    return 'open';
  }

  /** Close the circuit (a probe answered, here or in another replica); 'closed' when it was open. */
  reset(): CircuitState | undefined {
    if (this.openedAt === undefined) return undefined;
    this.openedAt = undefined;
    this.failures = 0;
    return 'closed';
  }

  /** When the circuit opened (ms since the epoch), while it is open. */
  get openedSince(): number | undefined {
    return this.openedAt;
  }

  snapshot(): CircuitSnapshot {
    const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
    return {
      state: this.state,
      consecutiveFailures: this.failures,
      ...(this.openedAt !== undefined ? { openedAt: iso(this.openedAt) } : {}),
      ...(this.lastProbeAt !== undefined ? { lastProbeAt: iso(this.lastProbeAt) } : {}),
      ...(this.lastProbeError !== undefined ? { lastProbeError: this.lastProbeError } : {}),
    };
  }
}
