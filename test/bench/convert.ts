/**
 * Conversion + validation throughput on one core: generated PHAROS reports (fr-pharos JSON)
 * → validated cases, in files of 1,000 reports, as ingest sees them.
 */
import { loadFormats } from '../../src/convert/format.js';
import { convertToCases } from '../../src/convert/to-case.js';
import type { Figure } from './report.js';

const CATEGORIES = ['ESCROQUERIE', 'HAMECONNAGE', 'EXTORSION', 'PIRATAGE', 'AUTRE'];

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

export async function benchConvert(n: number, say: (l: string) => void): Promise<Figure[]> {
  const format = loadFormats().get('fr-pharos')!;
  const files: Buffer[] = [];
  for (let i = 0; i < n; i += 1000) {
    files.push(
      Buffer.from(
        JSON.stringify({
          signalements: Array.from({ length: Math.min(1000, n - i) }, (_, j) => report(i + j)),
        }),
      ),
    );
  }
  say(`convert: ${n} generated fr-pharos reports → validated cases …`);
  const t0 = performance.now();
  let ok = 0;
  for (const f of files) ok += (await convertToCases(format, f)).cases.length;
  const seconds = (performance.now() - t0) / 1000;
  return [
    {
      name: 'convert.fr-pharos.reports_per_s',
      value: Math.round(ok / seconds),
      unit: 'reports/s (1 core)',
      limit: '>= 10000',
    },
    { name: 'convert.fr-pharos.converted', value: ok, unit: `of ${n}` },
  ];
}
