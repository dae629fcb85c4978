/**
 * A plain HTTP proxy in front of a gateway's admin listener that checks every exchange
 * passing through it against the OpenAPI document (helpers/openapi.ts). Tests point the
 * `icros` CLI at it, so the CLI's own requests, and the answers it gets, are held to the
 * document as `admin()` holds the tests' requests. What differs is collected in `violations`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { conformance } from './openapi.js';

export interface ConformingProxy {
  url: string;
  /** One line per difference, naming the method, path and status. */
  violations: string[];
  close(): Promise<void>;
}

/** Hop-by-hop headers and those fetch() recomputes: not passed on. */
const DROP = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
]);

export async function conformingProxy(target: string): Promise<ConformingProxy> {
  const violations: string[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k, v]) => !DROP.has(k) && typeof v === 'string'),
      ) as Record<string, string>;
      const method = req.method ?? 'GET';
      const answer = await fetch(new URL(req.url ?? '/', target), {
        method,
        headers,
        body: body.length > 0 ? body : undefined,
      });
      const out = Buffer.from(await answer.arrayBuffer());
      // Each line names the method, path and status already.
      violations.push(
        ...conformance({
          method,
          path: req.url ?? '/',
          requestContentType: req.headers['content-type'],
          requestBody: body.length > 0 ? body.toString('utf8') : undefined,
          status: answer.status,
          responseHeaders: answer.headers,
          responseBody: out.toString('utf8'),
        }),
      );
      const back: Record<string, string> = {};
      answer.headers.forEach((value, key) => {
        if (!DROP.has(key)) back[key] = value;
      });
      res.writeHead(answer.status, back).end(out);
    } catch (err) {
      violations.push(`${req.method} ${req.url}: the proxy failed: ${(err as Error).message}`);
      res.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    violations,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
