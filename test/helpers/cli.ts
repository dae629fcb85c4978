/**
 * The `icros` command as a child process, run without blocking this process (the gateways
 * under test live here): exit status, stdout and stderr.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Any program: `file args…` with extra environment. */
export async function runCommand(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  try {
    const r = await run(file, args, {
      env: { ...process.env, LOG_LEVEL: 'error', ...env },
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return {
      status: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

export const icros = (args: string[], env: Record<string, string> = {}) =>
  runCommand(process.execPath, ['bin/icros.js', ...args], env);
