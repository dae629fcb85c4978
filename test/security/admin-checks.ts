/**
 * Checks of the admin listener for `npm run security` and its mocha spec: security headers on
 * every answer, and error bodies that are problem+json without a stack trace, a file path or
 * an internal message, for errors provoked on purpose.
 */

export interface Row {
  check: string;
  expected: string;
  got: string;
  /** `skipped` when the check could not run (a missing tool): never counted as passed. */
  ok: boolean | 'skipped';
}

const HEADERS: [string, RegExp][] = [
  ['x-content-type-options', /^nosniff$/],
  ['x-frame-options', /^(DENY|SAMEORIGIN)$/],
  ['content-security-policy', /default-src 'self'|default-src 'none'/],
  ['referrer-policy', /^no-referrer$/],
  ['cross-origin-resource-policy', /^same-origin$/],
  ['strict-transport-security', /max-age=\d+/],
];

// What a leaked stack or internal detail looks like: "    at fn (file:line)", a source path,
// an exception class name, a SQL error.
const LEAK =
  /\bat .+\(|node_modules|\/src\/|\.[jt]s:\d+|\b(Type|Reference|Range|URI|Syntax)Error\b|\bSQLSTATE\b|\bselect .+ from\b/i;

export async function adminChecks(baseUrl: string, token: string): Promise<Row[]> {
  const rows: Row[] = [];
  const health = await fetch(`${baseUrl}/healthz`);
  for (const [name, want] of HEADERS) {
    const v = health.headers.get(name);
    rows.push({
      check: `admin header ${name}`,
      expected: String(want),
      got: v ?? '(absent)',
      ok: v !== null && want.test(v),
    });
  }
  const powered = health.headers.get('x-powered-by');
  rows.push({
    check: 'admin header x-powered-by',
    expected: '(absent)',
    got: powered ?? '(absent)',
    ok: powered === null,
  });

  const auth = { authorization: `Bearer ${token}` };
  const provoked: [string, string, RequestInit][] = [
    ['undecodable path parameter', '/api/cases/%E0%A4%A', { headers: auth }],
    [
      'broken JSON body',
      `/api/cases/${crypto.randomUUID()}/forward`,
      { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"to": [' },
    ],
    ['forged cursor', '/api/messages?cursor=%00%01', { headers: auth }],
    ['unknown route', '/nowhere/../../etc/passwd', {}],
    ['no token', '/api/messages', {}],
  ];
  for (const [what, p, init] of provoked) {
    const res = await fetch(`${baseUrl}${p}`, init);
    const body = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const leak = LEAK.exec(body)?.[0];
    const problem = type.startsWith('application/problem+json') && /"code":"[A-Z_]+"/.test(body);
    rows.push({
      check: `admin error: ${what}`,
      expected: '4xx problem+json with a code, no stack or internals',
      got: `${res.status} ${type.split(';')[0]}${leak ? ` leaks ${JSON.stringify(leak)}` : ''}`,
      ok: res.status >= 400 && res.status < 500 && problem && !leak,
    });
  }
  return rows;
}
