/**
 * The delivery queue interface. The outbox table is the source of truth; a driver only
 * decides when each due row is attempted. `embedded` (this issue) polls the outbox in
 * process; a BullMQ driver slots in behind the same interface.
 */
export interface DeliveryQueue {
  start(): void;
  /** New rows were written: look now rather than at the next poll. */
  kick(): void;
  /** Stop claiming; wait for the attempts in flight. */
  stop(): Promise<void>;
}
