/** Waiting for the node's components: each wait names its component and fails fast when its process exits. */
import { Resolver } from 'node:dns/promises';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { describeExit, type ManagedProcess } from '../local/process.ts';
import { pollUntil } from '../poll.ts';
import { NodeStartError } from './errors.ts';
import type { CertPaths } from './pki.ts';

interface Watched {
  component: string;
  process?: ManagedProcess;
  logFile?: string;
}

/**
 * Polls `check` (true when ready, else a reason) every 250 ms until `deadline` (ms since the epoch). Throws
 * NodeStartError with the last reason and the component's log tail.
 */
export async function waitFor(what: Watched, deadline: number, check: () => Promise<true | string>): Promise<void> {
  let last = '';
  const ready = async (): Promise<true | undefined> => {
    if (what.process && !what.process.running) {
      throw new NodeStartError(what.component, `exited (${describeExit(what.process.exit ?? { code: null, signal: null })}) before it was ready`, what.logFile);
    }
    try {
      const result = await check();
      if (result === true) return true;
      last = result;
    } catch (error) {
      last = (error as Error).message;
    }
    return undefined;
  };
  await pollUntil(ready, { timeoutMs: deadline - Date.now(), intervalMs: 250, timeout: () => new NodeStartError(what.component, `not ready in time (${last})`, what.logFile) });
}

interface HttpsAnswer {
  status: number;
  text: string;
}

/** A GET with the node's CA and a client certificate. */
export function httpsGet(url: string, ca: string, client: CertPaths | undefined, timeoutMs = 3000): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const tls = { ca: readFileSync(ca), ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) };
    const req = https.get(url, { ...tls, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** The IPv4 addresses the node's DNS server gives for `name` (one try, short timeout). */
export async function resolveWith(server: string, name: string): Promise<string[]> {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([server]);
  return resolver.resolve4(name);
}
