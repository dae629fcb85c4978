/**
 * `icros audit …`, the auditor's commands. Each works offline (`--config`: the gateway's own
 * database, read directly — stop a PGlite gateway first) or through the admin API
 * (`--server` with an auditor token); `verify --file` needs neither.
 *
 *   icros audit verify --file export.jsonl [--checkpoints FILE] [--cert SIGNING_CERT]
 *   icros audit verify --config gateway.json | --server URL
 *   icros audit export [--format jsonl|csv] [--out FILE] --config gateway.json | --server URL
 *   icros audit witness --config gateway.json [--log DE=FILE …]
 *
 * Exit codes: 0 the chain verifies; 1 it does not (first bad seq and reason on stderr), or a
 * checked failure; 2 usage.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifyStored } from '../api/audit.js';
import type { AuditEvent } from '../audit/append.js';
import { checkpointKey, verifyCheckpoint, writeCheckpoint } from '../audit/checkpoint.js';
import { CSV_HEADER, csvLine, eventsFrom, jsonlLines } from '../audit/export.js';
import { type VerifyResult, verifyEvents } from '../audit/verify.js';
import { createAuditWriter } from '../audit/writer.js';
import { loadConfig } from '../config/load.js';
import type { GatewayContext } from '../context.js';
import { IcrosError } from '../errors.js';
import { partnerRegistry } from '../inbound/identity.js';
import { createMetrics } from '../metrics.js';
import { createCaseCache } from '../outbound/case-cache.js';
import { openDb } from '../store/db.js';
import { sql } from '../store/sql.js';
import { type ApiOptions, ApiProblem, apiJson, hasServer, resolveApi } from './api.js';
import { UsageError } from './usage.js';

interface Source extends ApiOptions {
  config?: string;
}

function sourceOf(opts: Source): 'config' | 'server' {
  if (opts.config && opts.server) throw new UsageError('give either --config or --server, not both');
  if (opts.config) return 'config';
  if (hasServer(opts)) return 'server';
  throw new UsageError('give --config gateway.json (offline, the gateway stopped) or --server URL');
}

/** A minimal context over the gateway's database, for offline commands. */
async function offline(configFile: string): Promise<GatewayContext & { close(): Promise<void> }> {
  const config = loadConfig(configFile);
  const db = await openDb(config.database);
  const ctx: GatewayContext = {
    config,
    db,
    registry: partnerRegistry(config),
    tx: createAuditWriter(db, () => new Date()),
    now: () => new Date(),
    metrics: createMetrics(config.country),
    cases: createCaseCache(0),
  };
  return { ...ctx, close: () => db.close() };
}

function report(result: VerifyResult, json: boolean, what: string): void {
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.ok) {
    process.stdout.write(
      `${what}: ok — ${result.checked} events, head seq ${result.head?.seq ?? 0} ${result.head?.hash ?? ''}, ${result.checkpoints} signed checkpoint(s) matched\n`,
    );
  }
  if (!result.ok) {
    process.stderr.write(
      `icros: AUDIT_CHAIN_BROKEN: ${what}: first bad seq ${result.firstBadSeq}: ${result.reason}\n`,
    );
    process.exitCode = 1;
  }
}

export async function runAuditVerify(
  opts: Source & { file?: string; checkpoints?: string; cert?: string; json: boolean },
): Promise<void> {
  if (opts.file) {
    if (opts.config || opts.server)
      throw new UsageError('--file verifies an export on its own: drop --config/--server');
    report(await verifyFile(opts.file, opts.checkpoints, opts.cert), opts.json, opts.file);
    return;
  }
  if (sourceOf(opts) === 'server') {
    const result = await apiJson<VerifyResult>(resolveApi(opts), 'GET', '/api/audit/verify');
    report(result, opts.json, 'audit chain (server)');
    return;
  }
  const ctx = await offline(opts.config!);
  try {
    report(await verifyStored(ctx), opts.json, `audit chain of ${ctx.config.country}`);
  } finally {
    await ctx.close();
  }
}

/**
 * An export file: JSON Lines of events and `{"checkpoint": "<JWS>"}` lines, plus optional
 * extra checkpoints (`--checkpoints`: one JWS per line, or the JSON of GET /api/audit/checkpoints).
 * Checkpoint signatures are checked with `--cert`; the export must end at one.
 */
export async function verifyFile(file: string, extra?: string, certFile?: string): Promise<VerifyResult> {
  const jwsList: string[] = [];
  let lineNo = 0;
  let bad: VerifyResult | undefined;
  for await (const line of lines(file)) {
    lineNo++;
    if (!line.trim()) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      bad ??= broken(0, `line ${lineNo} is not JSON`);
      continue;
    }
    const jws = (doc as { checkpoint?: unknown }).checkpoint;
    if (typeof jws === 'string') jwsList.push(jws);
  }
  if (bad) return bad;
  if (extra) jwsList.push(...readCheckpointsFile(extra));
  if (jwsList.length && !certFile) {
    throw new UsageError(
      'the export carries signed checkpoints: give --cert with the signing certificate of the gateway that wrote it',
    );
  }
  const key = certFile ? checkpointKey(readText(certFile, '--cert')) : undefined;
  const checkpoints: { seq: number; hash: string }[] = [];
  for (const jws of jwsList) {
    const c = await verifyCheckpoint(jws, key!);
    checkpoints.push({ seq: c.seq, hash: c.hash });
  }
  async function* events(): AsyncGenerator<AuditEvent> {
    for await (const line of lines(file)) {
      if (!line.trim()) continue;
      const doc = JSON.parse(line) as Record<string, unknown>;
      if ('checkpoint' in doc) continue;
      yield doc as unknown as AuditEvent;
    }
  }
  return verifyEvents(events(), { checkpoints, mustEndAtCheckpoint: true });
}

function broken(seq: number, reason: string): VerifyResult {
  return { ok: false, checked: 0, head: null, firstBadSeq: seq, reason, checkpoints: 0 };
}

function lines(file: string): AsyncIterable<string> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  stream.on('error', () => {});
  return (async function* () {
    try {
      await once(stream, 'open');
    } catch (cause) {
      throw new IcrosError(
        'FILE_UNREADABLE',
        `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
        {
          cause,
        },
      );
    }
    yield* createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  })();
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IcrosError(
      'FILE_UNREADABLE',
      `${what}: cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause,
      },
    );
  }
}

/** Checkpoints from a file: one compact JWS per line, or `{"checkpoints": [{jws}…]}`. */
function readCheckpointsFile(file: string): string[] {
  const text = readText(file, '--checkpoints').trim();
  if (text.startsWith('{')) {
    const doc = JSON.parse(text) as { checkpoints?: { jws?: unknown }[] };
    return (doc.checkpoints ?? []).map((c) => c.jws).filter((j): j is string => typeof j === 'string');
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

export async function runAuditExport(opts: Source & { format: string; out?: string }): Promise<void> {
  if (!['jsonl', 'csv'].includes(opts.format)) throw new UsageError('--format is jsonl or csv');
  const out = opts.out ? createWriteStream(opts.out) : process.stdout;
  if (sourceOf(opts) === 'server') {
    const api = resolveApi(opts);
    let res: Response;
    try {
      res = await fetch(`${api.server}/api/audit/export?format=${opts.format}`, {
        headers: { authorization: `Bearer ${api.token}` },
      });
    } catch (cause) {
      throw new IcrosError('SERVER_UNREACHABLE', `cannot reach ${api.server}`, { cause });
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      let p: { code?: string; detail?: string } = {};
      try {
        p = JSON.parse(text);
      } catch {
        // not problem+json
      }
      throw new ApiProblem(res.status, p.code ?? `HTTP_${res.status}`, p.detail ?? text.slice(0, 200));
    }
    await pipeline(Readable.fromWeb(res.body as never), out);
    return;
  }
  const ctx = await offline(opts.config!);
  try {
    const last = await ctx.db.tx((q) =>
      writeCheckpoint(q, ctx.config.signing, ctx.config.country, new Date()),
    );
    await ctx.tx.append((q) =>
      q.audit({
        actor: { kind: 'user', id: 'icros audit export (offline)' },
        action: 'audit.exported',
        subject: {},
        detail: { format: opts.format, uptoSeq: last?.seq ?? 0 },
      }),
    );
    async function* body(): AsyncGenerator<string> {
      if (opts.format === 'csv') {
        yield CSV_HEADER;
        if (last) for await (const e of eventsFrom(ctx.db, 0, last.seq)) yield csvLine(e);
        return;
      }
      if (!last) return;
      yield* jsonlLines(ctx.db, last);
      yield `${JSON.stringify({ checkpoint: last.jws })}\n`;
    }
    await pipeline(Readable.from(body()), out);
  } finally {
    await ctx.close();
  }
}

/**
 * Per partner: the latest head of *its* chain it acknowledged in a receipt to us. Given the
 * partner's audit export or signed checkpoints (`--log DE=FILE`; checkpoint signatures are
 * verified with the partner's registered signing certificates), each acknowledged head whose
 * seq appears there must carry the same hash: a different one is evidence that the partner's
 * log was rewritten after it acknowledged our message. Verify the export's own chain with
 * `icros audit verify --file FILE --cert <partner sign.crt>`.
 */
export async function runAuditWitness(opts: {
  config?: string;
  log: string[];
  json: boolean;
}): Promise<void> {
  if (!opts.config)
    throw new UsageError('give --config gateway.json (the witness reads the stored receipts)');
  const logs = new Map<string, string>();
  for (const spec of opts.log) {
    const m = /^([A-Z]{2})=(.+)$/.exec(spec);
    if (!m) throw new UsageError(`--log ${spec}: expected COUNTRY=FILE, e.g. DE=de-audit.jsonl`);
    logs.set(m[1]!, m[2]!);
  }
  const ctx = await offline(opts.config);
  try {
    const out = await witness(ctx, logs);
    if (out.some((e) => e.log?.conflicts.length)) process.exitCode = 1;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ partners: out })}\n`);
      return;
    }
    for (const e of out) {
      const head = e.acknowledgedHead;
      process.stdout.write(
        `${e.partner}: ${head ? `acknowledged head seq ${head.seq} ${head.hash}` : 'no receipt yet'}${
          e.log ? `; against its log: ${e.log.matched} matched, ${e.log.conflicts.length} CONFLICTING` : ''
        }\n`,
      );
      if (e.log?.conflicts.length) process.stderr.write(`  ${JSON.stringify(e.log.conflicts)}\n`);
    }
  } finally {
    await ctx.close();
  }
}

export interface WitnessEntry {
  partner: string;
  acknowledgedHead: { seq: number; hash: string } | null;
  log?: { matched: number; conflicts: { seq: number; theirs: string; acknowledged: string }[] };
}

/**
 * The witness report over a gateway's stored receipts; `logs` maps a partner to its audit
 * export or checkpoints file (checkpoint signatures verified with its registered keys).
 */
export async function witness(
  ctx: Pick<GatewayContext, 'db' | 'config'>,
  logs: Map<string, string>,
): Promise<WitnessEntry[]> {
  const rows = await ctx.db.query<{ peer: string; seq: string; hash: string }>(sql('witnessHeads'));
  const out: WitnessEntry[] = [];
  for (const p of ctx.config.partners) {
    const mine = rows.filter((r) => r.peer === p.country);
    const latest = mine.sort((a, b) => Number(b.seq) - Number(a.seq))[0];
    const entry: WitnessEntry = {
      partner: p.country,
      acknowledgedHead: latest ? { seq: Number(latest.seq), hash: latest.hash } : null,
    };
    const file = logs.get(p.country);
    if (file) {
      // Every acknowledged head whose seq appears in the partner's log must carry the same hash.
      const heads = new Map(mine.map((r) => [Number(r.seq), r.hash]));
      const log: NonNullable<WitnessEntry['log']> = { matched: 0, conflicts: [] };
      const compare = (seq: number, hash: string) => {
        const ack = heads.get(seq);
        if (ack === undefined) return;
        if (ack === hash) log.matched++;
        else log.conflicts.push({ seq, theirs: hash, acknowledged: ack });
      };
      for await (const line of lines(file)) {
        const text = line.trim();
        if (!text) continue;
        if (!text.startsWith('{')) {
          const c = await verifyCheckpoint(text, p);
          compare(c.seq, c.hash);
          continue;
        }
        const doc = JSON.parse(text) as {
          checkpoint?: string;
          checkpoints?: { jws: string }[];
          seq?: number;
          hash?: string;
        };
        for (const jws of doc.checkpoint ? [doc.checkpoint] : (doc.checkpoints ?? []).map((c) => c.jws)) {
          const c = await verifyCheckpoint(jws, p);
          compare(c.seq, c.hash);
        }
        if (typeof doc.seq === 'number' && typeof doc.hash === 'string') compare(doc.seq, doc.hash);
      }
      entry.log = log;
    }
    out.push(entry);
  }
  return out;
}
