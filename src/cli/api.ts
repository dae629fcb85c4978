/**
 * The CLI as a client of the admin API: where the server is and which token to present
 * (`--server` / `ICROS_SERVER`, `--token` / `ICROS_TOKEN`), and one JSON request with the
 * API's problem turned into an error that keeps its code.
 */
import { IcrosError, type ProblemItem } from '../errors.js';
import { UsageError } from './usage.js';

export interface ApiOptions {
  server?: string;
  token?: string;
}

export interface Api {
  server: string;
  token: string;
}

export function resolveApi(opts: ApiOptions): Api {
  const server = (opts.server ?? process.env.ICROS_SERVER)?.replace(/\/+$/, '');
  const token = opts.token ?? process.env.ICROS_TOKEN;
  if (!server) throw new UsageError('give the admin API with --server URL (or ICROS_SERVER)');
  if (!token) throw new UsageError('give a token with --token (or ICROS_TOKEN)');
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

export async function apiJson<T>(api: Api, method: string, path: string, body?: unknown): Promise<T> {
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
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const p = (parsed ?? {}) as { code?: string; detail?: string; errors?: ProblemItem[] };
    throw new ApiProblem(
      res.status,
      p.code ?? `HTTP_${res.status}`,
      p.detail ?? text.slice(0, 200),
      p.errors,
    );
  }
  return parsed as T;
}
