/**
 * Conversion + validation throughput on one core, for every national format, in files of
 * 1,000 reports as ingest sees them. N generated PHAROS reports (fr-pharos JSON) are converted
 * to validated cases (timed: the fr-pharos figure); then, for each other format, the same
 * reports are converted and exported in that format file by file (not timed), and the exported
 * files converted back to validated cases (timed).
 * The exchange formats (STIX, MISP) carry several objects per case and run the largest
 * mappings, so they convert a fifth of N (at least 1,000 reports), as their figure's unit says.
 * Each format gives two figures: reports per second of wall-clock time, and per second of the
 * process's CPU time (all its threads, V8's garbage collector included), which does not depend
 * on what else a shared machine is running.
 */
import { loadFormats, type NationalFormat } from '../../src/convert/format.js';
import { exportCases } from '../../src/convert/from-case.js';
import { convertToCases } from '../../src/convert/to-case.js';
import type { Figure } from './report.js';

const CATEGORIES = ['ESCROQUERIE', 'HAMECONNAGE', 'EXTORSION', 'PIRATAGE', 'AUTRE'];
const FILE = 1000;
/** The formats in the order they are measured, and the share of N each converts. */
const FORMATS: [id: string, share: number][] = [
  ['fr-pharos', 1],
  ['fr-pharos-csv', 1],
  ['de-xml', 1],
  ['stix-2.1', 0.2],
  ['misp', 0.2],
];

function report(i: number) {
  return {
    numeroSignalement: `PHAROS-2026-${String(i).padStart(7, '0')}`,
    dateSignalement: '2026-11-03T20:14:00+01:00',
    dateFaits: { debut: '2026-10-28', fin: '2026-11-02' },
    categorie: CATEGORIES[i % CATEGORIES.length],
    sousCategorie: 'ESCR-BANC',
    libelleInfraction: 'Escroquerie par faux conseiller bancaire',
    resume: `Signalement ${i}: appel d'un faux conseiller bancaire puis SMS contenant un lien.`,
    langue: 'fr',
    victime: { type: 'personne', nom: 'Victime X.', anneeNaissance: 1950 + (i % 50), paysResidence: 'FR' },
    prejudice: { montant: `${100 + (i % 9000)}.50`, devise: 'EUR' },
    elementsSignales: [
      { type: 'telephone', valeur: '+33612345678' },
      { type: 'url', valeur: `https://secure-banque-${i % 100}.example/login` },
      { type: 'iban', valeur: 'DE89370400440532013000' },
    ],
    paysConcernes: ['DE'],
  };
}

/**
 * Convert every file, timed: how many cases it gave, and reports per second of wall-clock time
 * and of this process's CPU time. Nothing converted is kept, so that the collector's work is
 * that of conversion alone.
 */
async function timed(format: NationalFormat, files: Buffer[]) {
  let converted = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (const f of files) converted += (await convertToCases(format, f)).cases.length;
  const cpu = process.cpuUsage(cpu0);
  return {
    converted,
    perSecond: Math.round(converted / ((performance.now() - t0) / 1000)),
    perCpuSecond: Math.round(converted / ((cpu.user + cpu.system) / 1e6)),
  };
}

export async function benchConvert(n: number, say: (l: string) => void): Promise<Figure[]> {
  const formats = loadFormats();
  const pharos = formats.get('fr-pharos')!;
  const files: Buffer[] = [];
  for (let i = 0; i < n; i += FILE) {
    files.push(
      Buffer.from(
        JSON.stringify({
          signalements: Array.from({ length: Math.min(FILE, n - i) }, (_, j) => report(i + j)),
        }),
      ),
    );
  }
  const figures: Figure[] = [];
  for (const [id, share] of FORMATS) {
    const format = formats.get(id)!;
    const count = id === 'fr-pharos' ? n : Math.min(n, Math.max(FILE, Math.round(n * share)));
    // Another format's files: the same reports, converted to cases and exported in that format
    // (not timed), file by file.
    const input: Buffer[] = [];
    if (id === 'fr-pharos') input.push(...files);
    else {
      for (const f of files.slice(0, Math.ceil(count / FILE))) {
        const cases = (await convertToCases(pharos, f)).cases.map((c) => c.case);
        input.push((await exportCases(format, cases)).body);
      }
    }
    say(`convert: ${count} ${id} reports → validated cases …`);
    const { converted, perSecond, perCpuSecond } = await timed(format, input);
    const of = `${converted} of ${count} converted${count < n ? `: the first ${count} of the ${n} reports` : ''}`;
    figures.push(
      {
        name: `convert.${id}.reports_per_s`,
        value: perSecond,
        unit: `reports/s (1 core, wall clock, ${of})`,
        ...(id === 'fr-pharos' ? { limit: '>= 10000' } : {}),
      },
      {
        name: `convert.${id}.reports_per_cpu_s`,
        value: perCpuSecond,
        unit: 'reports per CPU-second (all threads of the process, GC included)',
      },
    );
  }
  return figures;
}
