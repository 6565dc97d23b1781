// An operator whose API server is gone still stops on SIGTERM: its controllers wait for their caches to
// sync before they act, and that wait must not hold a stop (it once did, forever, until SIGKILL).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
const dir = mkdtempSync(path.join(os.tmpdir(), 'operator-shutdown-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A loopback port nothing listens on (bound, then closed): every request to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

for (const leaderElect of ['false', 'true']) {
  test(`SIGTERM stops an operator (--leader-elect=${leaderElect}) whose API server does not answer: exit 0, its controllers stopped`, { timeout: 60_000 }, async () => {
    const kubeconfig = path.join(dir, `kubeconfig-${leaderElect}`);
    const server = `https://127.0.0.1:${await closedPort()}`;
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}"}}]\nusers: [{name: u, user: {token: unused}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
    );
    const args = ['operator', '--runtime=local', '--kubeconfig', kubeconfig, `--leader-elect=${leaderElect}`, '--metrics-port', '0', '--health-port', '0', '--data-dir', path.join(dir, `members-${leaderElect}`), '--log-format', 'text'];
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // Up, and failing to reach the API server (so its caches cannot have synced).
      while (!/^health: /m.test(out) || !/ECONNREFUSED/.test(out)) {
        assert.equal(child.exitCode, null, `the operator exited early:\n${out}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      assert.match(out, /SIGTERM: stopping/);
      if (leaderElect === 'false') assert.match(out, /controller stopped.*robustnessrun/);
    } finally {
      child.kill('SIGKILL');
    }
  });
}
