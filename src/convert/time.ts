/**
 * Local wall-clock times in a named time zone ↔ RFC 3339 instants with their offset. National
 * spreadsheets write "03/11/2026 20:14" in the unit's own zone; the shared case needs the
 * offset, which depends on the date (summer time). Mappings reach these as `$fromLocalTime`
 * and `$toLocalTime`.
 */

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    // Throws RangeError for an unknown zone, which the mapping reports.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Milliseconds to add to UTC to get the wall clock in `zone` at instant `ms`. */
function offsetAt(zone: string, ms: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(ms))) parts[p.type] = Number(p.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return wall - Math.floor(ms / 1000) * 1000;
}

function formatOffset(ms: number): string {
  const sign = ms < 0 ? '-' : '+';
  const minutes = Math.abs(ms) / 60_000;
  return `${sign}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** "2026-11-03T20:14" in Europe/Paris → "2026-11-03T20:14:00+01:00". */
export function fromLocalTime(local: string, zone: string): string {
  const m = LOCAL.exec(String(local));
  if (!m) throw new Error(`"${String(local).slice(0, 40)}" is not a local date and time (YYYY-MM-DDTHH:MM)`);
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(wall);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new Error(`${local.slice(0, 10)} ${local.slice(11)} is not a real date and time`);
  }
  // The offset at the wall time read as UTC is right except within hours of a change; one
  // more step settles it. A time in the spring gap is read with the winter offset; an
  // ambiguous autumn time as the later (winter) instant.
  let offset = offsetAt(zone, wall);
  offset = offsetAt(zone, wall - offset);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}${formatOffset(offset)}`;
}

/** "2026-11-03T19:14:00Z" in Europe/Paris → "2026-11-03T20:14:00" (wall clock, no offset). */
export function toLocalTime(instant: string, zone: string): string {
  const ms = Date.parse(String(instant));
  if (Number.isNaN(ms)) throw new Error(`"${String(instant).slice(0, 40)}" is not a date and time`);
  return new Date(ms + offsetAt(zone, ms)).toISOString().slice(0, 19);
}
