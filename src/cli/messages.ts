/**
 * `icros messages …` through the admin API:
 *   icros messages list [--state dead] [--partner DE] [--limit N]
 *   icros messages redrive <id>
 *   icros messages redrive --partner DE --state dead
 */
import { type ApiOptions, apiJson, resolveApi } from './api.js';
import { UsageError } from './usage.js';

interface MessageRow {
  id: string;
  direction: string;
  peer: string;
  type: string;
  case_id: string | null;
  state: string;
  attempts: number;
  last_error: { code?: string; detail?: string } | null;
  created_at: string;
}

export async function runMessagesList(
  opts: ApiOptions & { state?: string; partner?: string; limit?: string; json: boolean },
): Promise<void> {
  const api = resolveApi(opts);
  const q = new URLSearchParams();
  if (opts.state) q.set('state', opts.state);
  if (opts.partner) q.set('partner', opts.partner);
  if (opts.limit) q.set('limit', opts.limit);
  const page = await apiJson<{ messages: MessageRow[]; next: string | null }>(
    api,
    'GET',
    `/api/messages?${q}`,
  );
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(page)}\n`);
    return;
  }
  for (const m of page.messages) {
    const problem = m.last_error?.code ? `  ${m.last_error.code}: ${m.last_error.detail ?? ''}` : '';
    process.stdout.write(
      `${m.id}  ${m.direction === 'out' ? '→' : '←'} ${m.peer}  ${m.state.padEnd(9)} ${String(m.attempts).padStart(3)} attempts  ${m.created_at}${problem}\n`,
    );
  }
  if (page.next) process.stdout.write(`… more: --limit or the API's cursor ${page.next}\n`);
}

export async function runMessagesRedrive(
  id: string | undefined,
  opts: ApiOptions & { partner?: string; state?: string; json: boolean },
): Promise<void> {
  const api = resolveApi(opts);
  if (id && (opts.partner || opts.state)) {
    throw new UsageError('give either a message id or --partner/--state, not both');
  }
  if (id) {
    const r = await apiJson<{ id: string; partner: string; state: string }>(
      api,
      'POST',
      `/api/messages/${encodeURIComponent(id)}/redrive`,
    );
    process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${r.id} → ${r.partner}: queued again\n`);
    return;
  }
  if (opts.state !== 'dead')
    throw new UsageError('redrive a message id, or all of them with --state dead [--partner XX]');
  const r = await apiJson<{ redriven: number; messages: { id: string; partner: string }[] }>(
    api,
    'POST',
    '/api/messages/redrive',
    { state: 'dead', ...(opts.partner ? { partner: opts.partner } : {}) },
  );
  if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else
    process.stdout.write(
      `${r.redriven} dead message(s) queued again${opts.partner ? ` for ${opts.partner}` : ''}\n`,
    );
}
