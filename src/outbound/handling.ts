/**
 * Handling codes at egress (docs/operations.md, "Handling codes at egress"). A case keeps
 * the handling its origin gave it (`doc.handling`, the default) and, when we received it,
 * the handling of the envelope it came under (`cases.handling`), which may only be stricter.
 *
 * - SIENA H2 ("not to be disseminated without permission of the provider") and TLP:RED
 *   ("for the eyes and ears of individual recipients only", FIRST TLP 2.0) forbid sending a
 *   received case onward: we are not its provider.
 * - SIENA H1 ("not to be used in judicial proceedings without permission of the provider")
 *   travels with every export as a marking.
 */
import { IcrosError } from '../errors.js';
import type { Handling } from '../schema/validators.js';

/** The columns of a stored case version that say how it may be handled. */
export interface HandledCase {
  id: string;
  received_from: string | null;
  /** The envelope handling it was received under (null for our own cases). */
  handling: Partial<Handling> | null;
  doc: { handling?: { tlp?: string; code?: string } };
}

export interface Marking {
  tlp: Handling['tlp'];
  code: Handling['code'];
}

/** The handling that binds us: the received envelope's when there is one, else the case's own default. */
export function effectiveHandling(c: HandledCase): Marking | null {
  const h = c.handling ?? c.doc.handling;
  return h?.tlp && h.code ? { tlp: h.tlp as Marking['tlp'], code: h.code as Marking['code'] } : null;
}

/** Refuse to forward a received case whose handling (envelope or case default) is H2 or TLP:RED. */
export function assertForwardAllowed(c: HandledCase): void {
  if (!c.received_from) return;
  for (const [where, h] of [
    ['the message it arrived in', c.handling],
    ["the case's own handling", c.doc.handling],
  ] as const) {
    if (!h) continue;
    const why = h.code === 'H2' ? 'handling code H2' : h.tlp === 'RED' ? 'TLP:RED' : undefined;
    if (why) {
      throw new IcrosError(
        'HANDLING_FORBIDS_FORWARD',
        `case ${c.id} was received from ${c.received_from} under ${why} (${where}): it cannot be forwarded onward without ${c.received_from}'s permission`,
      );
    }
  }
}

/** FIRST TLP 2.0, least to most restrictive. */
const TLP_ORDER = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'];

/**
 * A received case goes onward under handling at least as strict as it came with (docs/schema.md:
 * a forward may restrict, never relax): a TLP no lower, and the provider's H1 or H3 kept as it
 * is (SIENA codes are the provider's conditions, not ours to change). Located at the field.
 */
export function assertNotRelaxed(c: HandledCase, next: Partial<Handling> | undefined): void {
  if (!c.received_from || !next || typeof next !== 'object') return;
  const rank = (t: unknown) => TLP_ORDER.indexOf(String(t));
  const floor = [c.handling?.tlp, c.doc.handling?.tlp].filter(Boolean).sort((a, b) => rank(b) - rank(a))[0];
  if (floor && rank(next.tlp) >= 0 && rank(next.tlp) < rank(floor)) {
    throw new IcrosError(
      'REQUEST_INVALID',
      `case ${c.id} came from ${c.received_from} under TLP:${floor}: forward it under TLP:${floor} or stricter`,
      {
        errors: [
          {
            location: '/handling/tlp',
            rule: 'minimum',
            message: `must be ${TLP_ORDER.slice(rank(floor)).join(', ')}`,
          },
        ],
      },
    );
  }
  const code = c.handling?.code ?? c.doc.handling?.code;
  if ((code === 'H1' || code === 'H3') && next.code !== undefined && next.code !== code) {
    throw new IcrosError(
      'REQUEST_INVALID',
      `case ${c.id} came from ${c.received_from} under handling code ${code}: forward it under ${code}`,
      {
        errors: [
          {
            location: '/handling/code',
            rule: 'const',
            message: `must be ${code}, the provider's handling code`,
          },
        ],
      },
    );
  }
}
