/**
 * The formats a gateway can ingest and export: the shared `icros-case` itself, plus every
 * national format folder under `schemas/national/`, loaded once on first use.
 */
import { IcrosError } from '../errors.js';
import type { CaseV1 } from '../schema/validators.js';
import { loadFormats, type NationalFormat } from './format.js';
import { exportCases } from './from-case.js';
import type { Serialized } from './serialize.js';
import { type Conversion, convertToCases, type LocalOrigin, sharedToCases } from './to-case.js';

export const SHARED_FORMAT = 'icros-case';

let formats: Map<string, NationalFormat> | undefined;

function all(): Map<string, NationalFormat> {
  formats ??= loadFormats();
  return formats;
}

/** Every format id, the shared one first. */
export function formatIds(): string[] {
  return [SHARED_FORMAT, ...[...all().keys()].sort()];
}

/** A national format by id, or FORMAT_UNSUPPORTED naming the ones there are. */
export function nationalFormat(id: string): NationalFormat {
  const f = all().get(id);
  if (!f) {
    throw new IcrosError(
      'FORMAT_UNSUPPORTED',
      `format ${JSON.stringify(id)} is not supported; use one of ${formatIds().join(', ')}`,
    );
  }
  return f;
}

/** Report bytes in format `id` → cases and located rejections. */
export async function convertReport(
  id: string,
  bytes: Uint8Array,
  local?: LocalOrigin,
  offset = 0,
): Promise<Conversion> {
  return id === SHARED_FORMAT
    ? sharedToCases(bytes, offset)
    : convertToCases(nationalFormat(id), bytes, local, offset);
}

/** Cases → one document in format `id`: the shared JSON (one case or an array) or a national syntax. */
export async function exportReport(id: string, cases: CaseV1[]): Promise<Serialized> {
  if (id !== SHARED_FORMAT) return exportCases(nationalFormat(id), cases);
  const doc = cases.length === 1 ? cases[0] : cases;
  return { body: Buffer.from(`${JSON.stringify(doc, null, 2)}\n`), mediaType: 'application/json' };
}
