/**
 * Rules of the shared case that JSON Schema cannot state: refs are unique within a case,
 * every link points at refs that exist, and the offence period does not end before it
 * starts. Run only on a case that already matches the schema.
 */
import type { ProblemItem } from '../errors.js';
import type { IcrosCase } from './case.js';

const ENTITY_LISTS = ['parties', 'identifiers', 'evidence'] as const;

/** Problems with refs, links and the period of a schema-valid case (at most `max`); empty when none. */
export function caseRuleProblems(c: IcrosCase, max: number): ProblemItem[] {
  const problems: ProblemItem[] = [];
  const add = (p: ProblemItem) => {
    if (problems.length < max) problems.push(p);
  };
  const refs = new Map<string, string>();
  for (const list of ENTITY_LISTS) {
    for (const [i, entity] of (c[list] ?? []).entries()) {
      if (entity.ref === undefined) continue;
      const location = `/${list}/${i}/ref`;
      const first = refs.get(entity.ref);
      if (first === undefined) refs.set(entity.ref, location);
      else add({ location, rule: 'uniqueRef', message: `is the same ref as ${first}; refs must be unique` });
    }
  }
  for (const [i, link] of (c.links ?? []).entries()) {
    for (const end of ['from', 'to'] as const) {
      if (!refs.has(link[end])) {
        add({
          location: `/links/${i}/${end}`,
          rule: 'knownRef',
          message: 'names no party, identifier or evidence of this case',
        });
      }
    }
    if (link.from === link.to) {
      add({ location: `/links/${i}`, rule: 'knownRef', message: 'links an entity to itself' });
    }
  }
  const period = c.offencePeriod;
  if (period?.end !== undefined && instant(period.end, 'end') < instant(period.start, 'start')) {
    add({
      location: '/offencePeriod/end',
      rule: 'periodOrder',
      message: 'is before the start of the period',
    });
  }
  return problems;
}

/**
 * A date alone is a local day in an unknown zone (UTC-12 … UTC+14): as a start it may begin
 * 14 h before its UTC midnight, as an end it may last until 14 h after the next one. Only a
 * period that is reversed in every zone is rejected.
 */
function instant(value: string, side: 'start' | 'end'): number {
  if (value.length !== 10) return Date.parse(value);
  const midnight = Date.parse(`${value}T00:00:00Z`);
  return side === 'start' ? midnight - ZONE_SLACK_MS : midnight + DAY_MS + ZONE_SLACK_MS;
}

const DAY_MS = 86_400_000;
const ZONE_SLACK_MS = 14 * 3_600_000;
