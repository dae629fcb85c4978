/**
 * Checks of the partner listener with the tools an auditor would use: `openssl s_client`
 * (which protocol and which client certificates get an answer) and `sslscan` (protocols,
 * ciphers, key-exchange groups, compression, renegotiation). Each check is a table row.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Row } from './admin-checks.js';

const run = promisify(execFile);

async function exec(file: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: 20_000, maxBuffer: 8 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, out: `${stdout}\n${stderr}` });
      },
    );
    child.stdin?.end(input ?? '');
  });
}

export interface Identity {
  cert: string;
  key: string;
}

/**
 * One `GET /v1/ping` through `openssl s_client`: did an HTTP answer come back, and what did
 * the handshake say. With TLS 1.3 the server judges the client certificate after the
 * handshake, so "an HTTP answer" is the only sure sign that the connection was accepted.
 */
async function ping(port: number, ca: string, opts: { version: '-tls1_2' | '-tls1_3'; id?: Identity }) {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    opts.version,
    '-CAfile',
    ca,
    '-servername',
    'localhost',
    '-ign_eof',
  ];
  if (opts.id) args.push('-cert', opts.id.cert, '-key', opts.id.key);
  const { out } = await exec(
    'openssl',
    args,
    'GET /v1/ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
  );
  const http = /HTTP\/1\.1 (\d{3})/.exec(out)?.[1];
  const alert =
    /alert ([a-z ]+?)(?=:|\n|$)|(no protocols available|wrong version number|unsupported protocol|handshake failure|unexpected eof while reading)/i.exec(
      out,
    );
  const protocol = /Protocol\s*:\s*(\S+)/.exec(out)?.[1];
  return { http, alert: alert ? (alert[1] ?? alert[2])!.trim() : undefined, protocol };
}

export async function opensslChecks(
  port: number,
  ca: string,
  partner: Identity,
  foreign: Identity,
): Promise<Row[]> {
  const rows: Row[] = [];
  const t12 = await ping(port, ca, { version: '-tls1_2', id: partner });
  rows.push({
    check: 'openssl: TLS 1.2 with a partner certificate',
    expected: 'refused',
    got: t12.http ? `HTTP ${t12.http}` : `refused (${t12.alert ?? 'no answer'})`,
    ok: !t12.http,
  });
  const good = await ping(port, ca, { version: '-tls1_3', id: partner });
  rows.push({
    check: 'openssl: TLS 1.3 with a partner certificate',
    expected: 'HTTP 200 over TLSv1.3',
    got: good.http
      ? `HTTP ${good.http} over ${good.protocol ?? '?'}`
      : `refused (${good.alert ?? 'no answer'})`,
    ok: good.http === '200' && good.protocol === 'TLSv1.3',
  });
  const none = await ping(port, ca, { version: '-tls1_3' });
  rows.push({
    check: 'openssl: TLS 1.3 without a client certificate',
    expected: 'refused',
    got: none.http ? `HTTP ${none.http}` : `refused (${none.alert ?? 'no answer'})`,
    ok: !none.http,
  });
  const other = await ping(port, ca, { version: '-tls1_3', id: foreign });
  rows.push({
    check: 'openssl: TLS 1.3 with a certificate from another CA',
    expected: 'refused',
    got: other.http ? `HTTP ${other.http}` : `refused (${other.alert ?? 'no answer'})`,
    ok: !other.http,
  });
  return rows;
}

/** sslscan, installed with apt-get when missing; rows are `skipped` when it cannot be had. */
export async function sslscanChecks(port: number): Promise<Row[]> {
  const skipped = (why: string): Row[] => [
    { check: 'sslscan', expected: 'sslscan available', got: why, ok: 'skipped' },
  ];
  if (!(await has('sslscan'))) {
    process.stderr.write('sslscan is missing: apt-get install -y sslscan …\n');
    const r = await exec('apt-get', ['install', '-y', 'sslscan']);
    if (r.code !== 0 || !(await has('sslscan'))) {
      process.stderr.write('sslscan could not be installed; its checks are skipped (not passed)\n');
      return skipped('not installed and apt-get install failed');
    }
  }
  const { out } = await exec('sslscan', ['--no-colour', '--xml=-', `127.0.0.1:${port}`]);
  if (!out.includes('<ssltest'))
    return [{ check: 'sslscan', expected: 'a scan', got: out.trim().slice(0, 200), ok: false }];
  const rows: Row[] = [];
  const enabled = [...out.matchAll(/<protocol type="(\w+)" version="([\d.]+)" enabled="1"/g)].map(
    (m) => `${m[1]}${m[2]}`,
  );
  rows.push({
    check: 'sslscan: protocols enabled',
    expected: 'tls1.3 only',
    got: enabled.join(', ') || '(none)',
    ok: enabled.join() === 'tls1.3',
  });

  const ciphers = [
    ...out.matchAll(
      /<cipher status="\w+" sslversion="([^"]+)" bits="(\d+)" cipher="([^"]+)"[^>]*strength="(\w+)"/g,
    ),
  ];
  const weakCiphers = ciphers.filter((m) => Number(m[2]) < 128 || /weak|medium|null|anonymous/i.test(m[4]!));
  rows.push({
    check: 'sslscan: ciphers',
    expected: 'TLS 1.3 AEAD only, none weak',
    got: `${ciphers.map((m) => m[3]).join(', ')}${weakCiphers.length ? `; weak: ${weakCiphers.map((m) => m[3]).join(', ')}` : ''}`,
    ok: ciphers.length > 0 && weakCiphers.length === 0 && ciphers.every((m) => m[1] === 'TLSv1.3'),
  });

  const groups = [...out.matchAll(/<group sslversion="[^"]+" bits="(\d+)" name="([^"]+)"/g)];
  const weakGroups = groups.filter((m) => Number(m[1]) < 128);
  rows.push({
    check: 'sslscan: key-exchange groups',
    expected: 'all >= 128-bit security',
    got: `${groups.map((m) => m[2]!.split(' ')[0]).join(', ')}${weakGroups.length ? `; weak: ${weakGroups.map((m) => `${m[2]} (${m[1]} bits)`).join(', ')}` : ''}`,
    ok: groups.length > 0 && weakGroups.length === 0,
  });

  const compression = /<compression supported="(\d)"/.exec(out)?.[1];
  rows.push({
    check: 'sslscan: TLS compression',
    expected: 'not supported',
    got:
      compression === undefined
        ? 'not offered (TLS 1.3 has none)'
        : compression === '1'
          ? 'supported'
          : 'not supported',
    ok: compression !== '1',
  });
  const reneg = /<renegotiation supported="(\d)"/.exec(out)?.[1];
  rows.push({
    check: 'sslscan: renegotiation',
    expected: 'not supported',
    got: reneg === '1' ? 'supported' : 'not supported',
    ok: reneg !== '1',
  });
  const heartbleed = [...out.matchAll(/<heartbleed [^>]*vulnerable="(\d)"/g)].map((m) => m[1]);
  rows.push({
    check: 'sslscan: heartbleed',
    expected: 'not vulnerable',
    got: heartbleed.includes('1') ? 'vulnerable' : 'not vulnerable',
    ok: !heartbleed.includes('1'),
  });
  return rows;
}

async function has(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
}
