/**
 * The shared case v1 as a TypeScript type, mirroring `schemas/icros-case/1.0.json` (the
 * schema is the source of truth; `test/unit/schema.spec.ts` checks the samples against both).
 */

export type Country = string;
export type Role = 'victim' | 'suspect' | 'witness';

export interface Person {
  kind: 'person';
  ref: string;
  role: Role;
  name?: string;
  birthYear?: number;
  nationality?: Country;
  residenceCountry?: Country;
}

export interface Organisation {
  kind: 'organisation';
  ref: string;
  role: Role;
  name?: string;
  country?: Country;
  registrationId?: string;
}

export type Party = Person | Organisation;

interface IdentifierBase {
  ref?: string;
  value: string;
}

export type Identifier =
  | (IdentifierBase & { kind: 'url' | 'domain' | 'email' | 'phone' | 'bic' })
  | (IdentifierBase & { kind: 'iban'; bic?: string })
  | (IdentifierBase & { kind: 'crypto'; chain: CryptoChain; asset?: string })
  | (IdentifierBase & { kind: 'ip'; observedAt: string; port?: number })
  | (IdentifierBase & { kind: 'username'; platform: string })
  | (IdentifierBase & { kind: 'website'; title?: string });

export type IdentifierKind = Identifier['kind'];

export type CryptoChain =
  | 'bitcoin'
  | 'ethereum'
  | 'tron'
  | 'bnb-smart-chain'
  | 'polygon'
  | 'solana'
  | 'litecoin'
  | 'bitcoin-cash'
  | 'dogecoin'
  | 'monero'
  | 'ripple'
  | 'cardano'
  | 'other';

export interface Evidence {
  ref?: string;
  sha256: string;
  mediaType: string;
  size: number;
  capturedAt?: string;
}

export type Relation =
  | 'uses'
  | 'owns'
  | 'operates'
  | 'contacted'
  | 'paid'
  | 'impersonates'
  | 'hosts'
  | 'resolves-to'
  | 'redirects-to'
  | 'shows'
  | 'related-to';

export interface Link {
  from: string;
  to: string;
  relation: Relation;
  at?: string;
}

export interface ConversionWarning {
  location?: string;
  rule: string;
  message: string;
}

export interface IcrosCase {
  id: string;
  version: number;
  origin: { country: Country; agency: string; reference: string };
  createdAt: string;
  reportedAt?: string;
  classification: { iccs: string; budapestArticle?: number; nationalCode?: string; nationalLabel?: string };
  summary: { text: string; lang: string };
  offencePeriod?: { start: string; end?: string };
  parties?: Party[];
  identifiers?: Identifier[];
  concernedCountries?: Country[];
  loss?: { amount: string; currency: string };
  evidence?: Evidence[];
  links?: Link[];
  handling?: { tlp: 'CLEAR' | 'GREEN' | 'AMBER' | 'AMBER+STRICT' | 'RED'; code: 'H0' | 'H1' | 'H2' | 'H3' };
  retainUntil?: string;
  provenance?: {
    sourceFormat: string;
    mappingVersion: string;
    convertedAt?: string;
    warnings?: ConversionWarning[];
  };
}
