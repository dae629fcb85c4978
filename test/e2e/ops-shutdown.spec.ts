/**
 * Graceful shutdown of `icros gateway start` as a real child process: after SIGTERM new
 * connections are refused while a request already in flight completes, and the process
 * exits 0; the shutdown timeout cuts a request that never ends; a second signal exits at once.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { sampleCase, token } from '../helpers/clients.js';
import {
  editJson,
  freePorts,
  type GatewayProcess,
  ownPki,
  type Ports,
  startGatewayProcess,
} from '../helpers/own-pki.js';

/** A POST /api/reports whose body is sent in two parts: `finish()` sends the rest. */
function slowIngest(pki: string, port: number) {
  const body = Buffer.from(JSON.stringify(sampleCase()));
  let settle!: (r: { status: number; body: string } | { error: string }) => void;
  const done = new Promise<{ status: number; body: string } | { error: string }>((r) => {
    settle = r;
  });
  const req = http.request(
    {
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/api/reports?format=icros-case',
      agent: false,
      headers: {
        authorization: `Bearer ${token(pki, 'FR')}`,
        'content-type': 'application/json',
        'content-length': body.length,
      },
    },
    (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => settle({ status: res.statusCode ?? 0, body: text }));
      res.on('error', (e) => settle({ error: e.message }));
    },
  );
  req.on('error', (e) => settle({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  req.write(body.subarray(0, 10));
  return { done, finish: () => req.end(body.subarray(10)) };
}

/** How a new TCP connection to `port` ends: 'connected' or the error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
  });
}

async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('e2e graceful shutdown of icros gateway start (child process)', function () {
  this.timeout(120_000);
  let pki: string;
  let ports: Ports;
  let running: GatewayProcess | undefined;
  before(async () => {
    pki = await ownPki(['FR', 'DE']);
    ports = await freePorts(['FR']);
  });
  afterEach(() => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    running = undefined;
  });

  it('refuses new connections after SIGTERM, lets the request in flight finish, exits 0', async () => {
    running = await startGatewayProcess(pki, 'FR', ports);
    const slow = slowIngest(pki, ports.FR!.admin);
    await new Promise((r) => setTimeout(r, 300)); // the request is being read
    running.child.kill('SIGTERM');
    await waitUntil(
      'the admin listener to close',
      async () => (await tryConnect(ports.FR!.admin)) === 'ECONNREFUSED',
    );
    expect(await tryConnect(ports.FR!.partner)).to.equal('ECONNREFUSED');
    expect(running.child.exitCode).to.equal(null); // still draining
    slow.finish();
    const answer = await slow.done;
    expect(answer, JSON.stringify(answer)).to.have.property('status', 201);
    expect(await running.exited).to.equal(0);
    expect(running.stdout()).to.contain('SIGTERM: stopping');
  });

  it('cuts a request that never ends at shutdownTimeoutMs, then exits 0', async () => {
    editJson(path.join(pki, 'FR', 'gateway.json'), (doc) => {
      doc.shutdownTimeoutMs = 1000;
    });
    running = await startGatewayProcess(pki, 'FR', ports);
    const slow = slowIngest(pki, ports.FR!.admin);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    running.child.kill('SIGTERM');
    expect(await running.exited).to.equal(0);
    expect(Date.now() - t0).to.be.within(900, 10_000);
    expect(await slow.done).to.have.property('error');
  });

  it('exits at once with status 1 on a second signal', async () => {
    editJson(path.join(pki, 'FR', 'gateway.json'), (doc) => {
      doc.shutdownTimeoutMs = 60_000;
    });
    running = await startGatewayProcess(pki, 'FR', ports);
    slowIngest(pki, ports.FR!.admin);
    await new Promise((r) => setTimeout(r, 300));
    running.child.kill('SIGTERM');
    await waitUntil(
      'the admin listener to close',
      async () => (await tryConnect(ports.FR!.admin)) === 'ECONNREFUSED',
    );
    const t0 = Date.now();
    running.child.kill('SIGINT');
    expect(await running.exited).to.equal(1);
    expect(Date.now() - t0).to.be.lessThan(5_000);
    expect(running.stdout()).to.contain('SIGINT again: exiting now');
  });
});
