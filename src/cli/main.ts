/**
 * The `icros` command (DESIGN §6). Exit codes: 0 ok, 1 checked failure, 2 usage.
 */
import { Command, CommanderError, Option } from 'commander';
import { SIGNING_ALGS } from '../envelope/jws-crypto.js';
import { IcrosError } from '../errors.js';
import { DEFAULT_SIGNING_ALG } from '../pki/issue.js';
import { ApiProblem } from './api.js';
import { runAuditExport, runAuditVerify, runAuditWitness } from './audit.js';
import { runCasesExport, runCasesList, runCasesShow } from './cases.js';
import { runConvert } from './convert.js';
import { runDemo } from './demo.js';
import { runForward, runWithdraw } from './forward.js';
import { runGatewayStart } from './gateway.js';
import { runIngest } from './ingest.js';
import { runMessagesList, runMessagesRedrive } from './messages.js';
import { runPkiInit } from './pki.js';
import { runSchemaValidate } from './schema-validate.js';
import { UsageError } from './usage.js';
import { runUsersAdd, runUsersList, runUsersRevoke } from './users.js';

const program = new Command('icros')
  .description('icros-gateway: exchange signed case reports with partner gateways over mutual TLS')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('demo')
  .description('run a French and a German gateway on embedded storage and exchange sample cases FR → DE')
  .option(
    '--once',
    'exit after the exchange: 0 when every case is delivered and every receipt verified, 1 otherwise',
  )
  .option('--dir <dir>', 'where the dev PKI and both gateways’ data live', '.icros/demo')
  .action((opts) => runDemo({ once: Boolean(opts.once), dir: opts.dir }));

const pki = program.command('pki').description('dev public key infrastructure');
pki
  .command('init')
  .description(
    'create a dev federation root CA and per-country TLS and signing certificates, configs and tokens',
  )
  .requiredOption('--dir <dir>', 'output folder, e.g. certs/dev')
  .requiredOption('--countries <list>', 'comma-separated ISO 3166-1 alpha-2 codes, e.g. FR,DE,BE')
  .option('--force', 'replace the CA and reissue everything in the folder')
  .addOption(
    new Option(
      '--sign-alg <alg>',
      'JWS algorithm of newly issued signing certificates, hence their key: ES256 (EC P-256), ' +
        'EdDSA (Ed25519) or PS256 (RSA 2048); countries kept from an earlier run keep theirs, --force reissues',
    )
      .choices(SIGNING_ALGS)
      .default(DEFAULT_SIGNING_ALG),
  )
  .action((opts) =>
    runPkiInit({
      dir: opts.dir,
      countries: String(opts.countries).split(','),
      force: Boolean(opts.force),
      signAlg: opts.signAlg,
    }),
  );

program
  .command('convert')
  .description('convert a report file offline between the shared case and national formats')
  .requiredOption('--from <format>', 'icros-case or a national format id (schemas/national/<id>)')
  .requiredOption('--to <format>', 'icros-case or a national format id')
  .option('--origin <country:agency>', 'origin for formats that carry none (STIX, MISP), e.g. FR:PHAROS')
  .argument('<file>', 'the report file')
  .action((file: string, opts) => runConvert(file, { from: opts.from, to: opts.to, origin: opts.origin }));

program
  .command('ingest')
  .description(
    'ingest report files through the admin API, with a progress bar; rejected reports are listed by row or index',
  )
  .requiredOption('--format <format>', 'icros-case or a national format id (schemas/national/<id>)')
  .option('--server <url>', 'admin API base URL, e.g. http://127.0.0.1:8080 (or ICROS_SERVER)')
  .option('--token <token>', 'analyst token (or ICROS_TOKEN)')
  .option(
    '--profile <file>',
    'CLI profile {"server","token"} (or ICROS_CONFIG; default ~/.config/icros/cli.json)',
  )
  .option('--batch <n>', 'reports per upload', (v) => Number(v), 500)
  .option('--json', 'one JSON summary per file on stdout')
  .argument('<files...>', 'report files in that format')
  .action((files: string[], opts) =>
    runIngest(files, {
      format: opts.format,
      server: opts.server,
      token: opts.token,
      profile: opts.profile,
      batch: opts.batch,
      json: Boolean(opts.json),
    }),
  );

const messages = program.command('messages').description('follow and redrive messages through the admin API');
const apiOptions = (c: Command) =>
  c
    .option('--server <url>', 'admin API base URL, e.g. http://127.0.0.1:8080 (or ICROS_SERVER)')
    .option('--token <token>', 'analyst token (or ICROS_TOKEN)')
    .option(
      '--profile <file>',
      'CLI profile {"server","token"} (or ICROS_CONFIG; default ~/.config/icros/cli.json)',
    )
    .option('--json', 'JSON on stdout');
apiOptions(
  messages
    .command('list')
    .description('newest messages first, with their state and last problem')
    .option('--state <state>', 'queued, sending, retrying, delivered, dead or accepted')
    .option('--partner <cc>', 'partner country')
    .option('--limit <n>', 'at most this many (default 100)'),
).action((opts) => runMessagesList({ ...opts, json: Boolean(opts.json) }));
apiOptions(
  messages
    .command('redrive')
    .description(
      'queue dead messages again with a fresh attempt budget (admin token): one by id, or --state dead [--partner XX]',
    )
    .argument('[id]', 'message id')
    .option('--partner <cc>', 'only messages to this partner')
    .option('--state <state>', 'dead (the only state that can be redriven)'),
).action((id: string | undefined, opts) => runMessagesRedrive(id, { ...opts, json: Boolean(opts.json) }));

const users = program
  .command('users')
  .description('local API tokens: add (shown once), list, revoke — through the API or, offline, --config');
const usersOptions = (c: Command) =>
  c
    .option(
      '--config <gateway.json>',
      "offline: the gateway's own database (first admin; stop a PGlite gateway first)",
    )
    .option('--server <url>', 'admin API base URL (or ICROS_SERVER)')
    .option('--token <token>', 'admin token (or ICROS_TOKEN)')
    .option('--json', 'JSON on stdout');
usersOptions(
  users
    .command('add')
    .description('create a token for NAME with a role; prints the token once')
    .argument('<name>', 'who holds the token (what the audit log records), e.g. analyst-martin')
    .addOption(
      new Option('--role <role>', 'the role').choices(['analyst', 'auditor', 'admin']).makeOptionMandatory(),
    ),
).action((name: string, opts) => runUsersAdd(name, { ...opts, json: Boolean(opts.json) }));
usersOptions(users.command('list').description('config and local tokens, revoked ones included')).action(
  (opts) => runUsersList({ ...opts, json: Boolean(opts.json) }),
);
usersOptions(
  users
    .command('revoke')
    .description('revoke the local token NAME (refused at once)')
    .argument('<name>', 'token name'),
).action((name: string, opts) => runUsersRevoke(name, { ...opts, json: Boolean(opts.json) }));
apiOptions(
  program
    .command('forward')
    .description(
      'queue the case to partners (one signed message each); handling kept from the case unless --tlp/--code',
    )
    .argument('<caseId>', 'case id')
    .requiredOption('--to <list>', 'comma-separated partner countries, e.g. DE,BE')
    .requiredOption('--purpose <text>', 'why the case is sent (handling.purpose, audited)')
    .option('--tlp <tlp>', 'CLEAR, GREEN, AMBER, AMBER+STRICT or RED')
    .option('--code <code>', 'SIENA handling code H0, H1, H2 or H3')
    .option('--legal-basis <text>', 'handling.legalBasis (or "legalBasis" in the CLI profile)')
    .option('--restrictions <text>', 'handling.restrictions'),
).action((caseId: string, opts) => runForward(caseId, { ...opts, json: Boolean(opts.json) }));
apiOptions(
  program
    .command('withdraw')
    .description('withdraw a case of ours: a signed case.withdraw to every partner that was sent it')
    .argument('<caseId>', 'case id')
    .requiredOption('--purpose <text>', 'handling.purpose of the withdrawal messages (audited)')
    .option('--reason <text>', 'why (audited here, not sent)')
    .option(
      '--legal-basis <text>',
      'handling.legalBasis (default: that of the last transfer to each partner)',
    ),
).action((caseId: string, opts) => runWithdraw(caseId, { ...opts, json: Boolean(opts.json) }));

const cases = program
  .command('cases')
  .description('list, read and export cases through the admin API (audited)');
apiOptions(
  cases
    .command('list')
    .description('the latest version of each case, newest first')
    .option('--origin <cc>', 'origin country')
    .option('--received-from <cc>', 'partner the case came from, or none for our own cases')
    .option('--withdrawn <bool>', 'true or false')
    .option('--since <iso>', 'stored at or after this time, e.g. 2026-11-01T00:00:00Z')
    .option('--limit <n>', 'at most this many per page (default 100)')
    .option('--all', 'follow every page'),
).action((opts) => runCasesList({ ...opts, all: Boolean(opts.all), json: Boolean(opts.json) }));
apiOptions(
  cases.command('show').description('one case with its document').argument('<id>', 'case id'),
).action((id: string, opts) => runCasesShow(id, { ...opts, json: Boolean(opts.json) }));
apiOptions(
  cases
    .command('export')
    .description('cases in a national format, STIX 2.1 or MISP; several ids: one file each in --out DIR')
    .argument('<ids...>', 'case ids')
    .option('--format <format>', 'icros-case or a national format id', 'icros-case')
    .requiredOption('--purpose <text>', 'why the cases are exported (audited)')
    .option('--out <path>', 'a file (one id) or a folder'),
).action((ids: string[], opts) => runCasesExport(ids, { ...opts, json: Boolean(opts.json) }));

const audit = program
  .command('audit')
  .description("the auditor's commands: verify, export, witness (docs/audit.md)");
audit
  .command('verify')
  .description(
    'verify the hash chain and signed checkpoints: of an export file, the database, or through the API; exit 1 with the first bad seq',
  )
  .option('--file <export.jsonl>', 'an export (icros audit export, GET /api/audit/export)')
  .option(
    '--checkpoints <file>',
    'more signed checkpoints: one JWS per line, or GET /api/audit/checkpoints JSON',
  )
  .option(
    '--cert <sign.crt>',
    "the signing certificate of the gateway that wrote the log (checks the checkpoints' signatures)",
  )
  .option('--config <gateway.json>', "offline: the gateway's own database (stop a PGlite gateway first)")
  .option('--server <url>', 'through the admin API (or ICROS_SERVER)')
  .option('--token <token>', 'auditor token (or ICROS_TOKEN)')
  .option(
    '--profile <file>',
    'CLI profile {"server","token"} (or ICROS_CONFIG; default ~/.config/icros/cli.json)',
  )
  .option('--json', 'the result as JSON: {ok, checked, head, firstBadSeq, reason}')
  .action((opts) => runAuditVerify({ ...opts, json: Boolean(opts.json) }));
audit
  .command('export')
  .description(
    'the whole chain as JSON Lines ending at a fresh signed checkpoint (verifiable), or CSV for reading',
  )
  .option('--format <format>', 'jsonl or csv', 'jsonl')
  .option('--out <file>', 'write here instead of stdout')
  .option('--config <gateway.json>', "offline: the gateway's own database (stop a PGlite gateway first)")
  .option('--server <url>', 'through the admin API (or ICROS_SERVER)')
  .option('--token <token>', 'auditor token (or ICROS_TOKEN)')
  .option(
    '--profile <file>',
    'CLI profile {"server","token"} (or ICROS_CONFIG; default ~/.config/icros/cli.json)',
  )
  .action((opts) => runAuditExport(opts));
audit
  .command('witness')
  .description(
    'per partner, the latest head of its audit chain it acknowledged in a receipt; checked against its log when given',
  )
  .requiredOption('--config <gateway.json>', 'the gateway whose stored receipts are read')
  .option(
    '--log <CC=file>',
    "a partner's audit export or checkpoints, e.g. DE=de-audit.jsonl (repeatable)",
    (v, acc: string[]) => [...acc, v],
    [],
  )
  .option('--json', 'JSON on stdout')
  .action((opts) => runAuditWitness({ config: opts.config, log: opts.log, json: Boolean(opts.json) }));

program
  .command('schema')
  .description('the shared JSON Schemas')
  .command('validate')
  .description('validate case or envelope files (JSON) against schemas/; exit 1 with every located error')
  .argument('<files...>', 'JSON files: a case, or an envelope (whose case is checked too)')
  .option('--json', 'one JSON report per file on stdout')
  .action((files: string[], opts) => runSchemaValidate(files, { json: Boolean(opts.json) }));

const gateway = program.command('gateway').description('run a gateway');
gateway
  .command('start')
  .description('run one gateway (partner + admin listeners and the delivery worker) until SIGINT/SIGTERM')
  .requiredOption('--config <file>', 'gateway.json')
  .option(
    '--no-delivery',
    'send nothing: serve the listeners and the admin API while other replicas on the same database deliver',
  )
  .action((opts) => runGatewayStart({ config: opts.config, delivery: opts.delivery !== false }));

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; everything else commander refuses is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`icros: ${err.message} (see --help)\n`);
      return 2;
    }
    if (err instanceof ApiProblem) {
      process.stderr.write(`icros: ${err.code} (${err.status}): ${err.message}\n`);
      for (const e of err.errors) process.stderr.write(`  at ${e.location}: ${e.message}\n`);
      return 1;
    }
    if (err instanceof IcrosError) {
      process.stderr.write(`icros: ${err.code}: ${err.message}\n`);
      for (const e of err.errors ?? []) process.stderr.write(`  at ${e.location}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`icros: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
