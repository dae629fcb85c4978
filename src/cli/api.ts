/**
 * The CLI as a client of the admin API: where the server is and which token to present,
 * and one request with the API's problem turned into an error that keeps its code.
 *
 * Server and token come from, in this order: the flags `--server` / `--token`, the
 * environment `ICROS_SERVER` / `ICROS_TOKEN`, then a CLI profile file — `--profile FILE`,
 * else `ICROS_CONFIG`, else `$XDG_CONFIG_HOME/icros/cli.json` (default
 * `~/.config/icros/cli.json`) — a JSON object `{"server", "token", "legalBasis"?}`. Each value
 * is taken from the first place that has it. A profile named by flag or environment must
 * exist; the default one is optional.
 */
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IcrosError, type ProblemItem } from '../errors.js';
import { UsageError } from './usage.js';

export interface ApiOptions {
  server?: string;
  token?: string;
  /** A CLI profile file (JSON `{server, token}`). */
  profile?: string;
}

export interface Api {
  server: string;
  token: string;
}

/** What a CLI profile file may hold. */
export interface Profile {
  server?: string;
  token?: string;
  /** Default legal basis of `icros forward` / `icros withdraw`. */
  legalBasis?: string;
}

const PROFILE_KEYS = ['server', 'token', 'legalBasis'] as const;

/** An environment variable; set but empty counts as unset. */
function env(name: string): string | undefined {
  return process.env[name] || undefined;
}

/** The profile file to read and whether it must exist (named explicitly). */
export function profilePath(opts: ApiOptions): { file: string; explicit: boolean } {
  if (opts.profile) return { file: opts.profile, explicit: true };
  const named = env('ICROS_CONFIG');
  if (named) return { file: named, explicit: true };
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return { file: path.join(base, 'icros', 'cli.json'), explicit: false };
}

/** The CLI profile; `{}` when the default file does not exist. */
export function readProfile(opts: ApiOptions): Profile {
  const { file, explicit } = profilePath(opts);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return {};
    throw new UsageError(`cannot read the CLI profile ${file} (${code ?? (err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new IcrosError('CONFIG_INVALID', `the CLI profile ${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new IcrosError(
      'CONFIG_INVALID',
      `the CLI profile ${file} must be a JSON object {"server", "token"}`,
    );
  }
  const errors: ProblemItem[] = [];
  for (const [k, v] of Object.entries(doc)) {
    if (!(PROFILE_KEYS as readonly string[]).includes(k))
      errors.push({
        location: `/${k}`,
        rule: 'additionalProperties',
        message: `use ${PROFILE_KEYS.join(', ')}`,
      });
    else if (typeof v !== 'string' || v.length === 0)
      errors.push({ location: `/${k}`, rule: 'type', message: 'must be a non-empty string' });
  }
  if (errors.length) {
    throw new IcrosError('CONFIG_INVALID', `the CLI profile ${file} is not valid`, { errors });
  }
  const profile = doc as Profile;
  if (profile.token && process.platform !== 'win32') {
    try {
      if (statSync(file).mode & 0o077)
        process.stderr.write(
          `icros: warning: ${file} holds a token and is readable by others; chmod 600 it\n`,
        );
    } catch {
      // read a moment ago; nothing to add
    }
  }
  return profile;
}

/** Whether a server is configured anywhere (flag, environment, profile). */
export function hasServer(opts: ApiOptions): boolean {
  return Boolean(opts.server || env('ICROS_SERVER') || readProfile(opts).server);
}

export function resolveApi(opts: ApiOptions): Api {
  let profile: Profile | undefined;
  const fromProfile = (k: 'server' | 'token') => {
    profile ??= readProfile(opts);
    return profile[k];
  };
  const server = (opts.server ?? env('ICROS_SERVER') ?? fromProfile('server'))?.replace(/\/+$/, '');
  const token = opts.token ?? env('ICROS_TOKEN') ?? fromProfile('token');
  if (!server)
    throw new UsageError('give the admin API with --server URL (or ICROS_SERVER, or a CLI profile)');
  if (!token) throw new UsageError('give a token with --token (or ICROS_TOKEN, or a CLI profile)');
  return { server, token };
}

/** A problem+json answer of the admin API, as an error the CLI prints with its code. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly errors: ProblemItem[] = [],
  ) {
    super(detail);
    this.name = 'ApiProblem';
  }
}

/** One request; a non-2xx answer becomes an ApiProblem, no answer SERVER_UNREACHABLE. */
export async function apiFetch(api: Api, method: string, path: string, body?: unknown): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${api.server}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${api.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (cause) {
    const reason = (cause as { cause?: { code?: string } })?.cause?.code ?? (cause as Error)?.message;
    throw new IcrosError('SERVER_UNREACHABLE', `cannot reach ${api.server} (${reason})`, { cause });
  }
  if (!res.ok) {
    const text = await res.text();
    let p: { code?: string; detail?: string; errors?: ProblemItem[] } = {};
    try {
      p = JSON.parse(text) ?? {};
    } catch {
      // not problem+json
    }
    throw new ApiProblem(
      res.status,
      p.code ?? `HTTP_${res.status}`,
      p.detail ?? text.slice(0, 200),
      p.errors,
    );
  }
  return res;
}

export async function apiJson<T>(api: Api, method: string, path: string, body?: unknown): Promise<T> {
  const res = await apiFetch(api, method, path, body);
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined as T;
  }
}
