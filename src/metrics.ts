/**
 * Prometheus metrics of one gateway (prom-client). Each gateway has its own registry, so
 * several gateways in one process (tests, the demo) never mix their figures. Served at
 * `GET /metrics` on the admin listener.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  /** Outbound attempts by partner and result (delivered, transient, permanent). */
  attempts: Counter<'partner' | 'result'>;
  delivered: Counter<'partner'>;
  /** Messages that died (attempts or age ran out, or a permanent refusal), by partner and code. */
  dead: Counter<'partner' | 'code'>;
  redriven: Counter<'partner'>;
  /** Seconds from queueing to the receipt, per delivered message. */
  deliveryLatency: Histogram<'partner'>;
  /** Age of the oldest undelivered outbound message, per partner (0 when none). */
  oldestQueuedSeconds: Gauge<'partner'>;
  /** Undelivered outbound messages (queued, retrying, sending), per partner. */
  openMessages: Gauge<'partner'>;
  /** 1 while the partner's circuit is open. */
  circuitOpen: Gauge<'partner'>;
}

export function createMetrics(country: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ gateway: country });
  const registers = [registry];
  return {
    registry,
    attempts: new Counter({
      name: 'icros_delivery_attempts_total',
      help: 'Outbound delivery attempts by partner and result',
      labelNames: ['partner', 'result'],
      registers,
    }),
    delivered: new Counter({
      name: 'icros_messages_delivered_total',
      help: 'Outbound messages delivered (receipt verified)',
      labelNames: ['partner'],
      registers,
    }),
    dead: new Counter({
      name: 'icros_messages_dead_total',
      help: 'Outbound messages that died, by partner and problem code',
      labelNames: ['partner', 'code'],
      registers,
    }),
    redriven: new Counter({
      name: 'icros_messages_redriven_total',
      help: 'Dead outbound messages redriven by an operator',
      labelNames: ['partner'],
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'icros_delivery_latency_seconds',
      help: 'Seconds from queueing a message to its verified receipt',
      labelNames: ['partner'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
    oldestQueuedSeconds: new Gauge({
      name: 'icros_oldest_queued_seconds',
      help: 'Age of the oldest undelivered outbound message per partner',
      labelNames: ['partner'],
      registers,
    }),
    openMessages: new Gauge({
      name: 'icros_open_messages',
      help: 'Undelivered outbound messages (queued, retrying, sending) per partner',
      labelNames: ['partner'],
      registers,
    }),
    circuitOpen: new Gauge({
      name: 'icros_circuit_open',
      help: '1 while the circuit towards the partner is open',
      labelNames: ['partner'],
      registers,
    }),
  };
}
