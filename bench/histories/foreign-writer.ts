/**
 * A foreign writer for the "shared" recording: reads the CLI's output file until the `cluster:` line names
 * the members' endpoints, then puts keys outside the run's prefix (/foreign/) through all members, about
 * 200 a second, until the output shows the run's `verdict:` line. Its writes advance the store's revision
 * between the run's own operations, which is what shared mode must tolerate.
 *
 *   node bench/histories/foreign-writer.ts RUN_OUTPUT_FILE
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';

const [outputFile] = process.argv.slice(2);
if (outputFile === undefined) throw new Error('usage: node bench/histories/foreign-writer.ts RUN_OUTPUT_FILE');
const output = (): string => (existsSync(outputFile) ? readFileSync(outputFile, 'utf8') : '');

let endpoints: string[] | undefined;
for (let i = 0; i < 600 && endpoints === undefined; i++) {
  const line = /^cluster: .* members (.+)$/m.exec(output())?.[1];
  endpoints = line?.split(' ').map((m) => m.slice(m.indexOf('=') + 1));
  if (endpoints === undefined) await sleep(100);
}
if (endpoints === undefined) throw new Error(`no cluster line in ${outputFile} after 60 s`);
const client = new Etcd3({ hosts: endpoints, dialTimeout: 500 });
let written = 0;
let failed = 0;
// The run prints `verdict:` when it is done; `exiting now` when stopped hard (then the script stops us too).
const done = (): boolean => /^verdict: |exiting now/m.test(output());
for (let i = 0; !done(); i++) {
  try {
    await client.put(`/foreign/key${i % 50}`).value(`foreign-${i}`);
    written++;
  } catch {
    failed++; // a paused or killed member: the foreign writer just goes on
  }
  await sleep(5);
}
client.close();
process.stdout.write(`foreign writer: ${written} puts outside the prefix, ${failed} failed\n`);
