/**
 * Reproduces etcd issue 14370, "Durability API guarantee broken in single node cluster", with the
 * repository's own pieces: a one-member LocalEtcdCluster with gofail, recorded traffic
 * (HistoryRecorder + RecordingClient), a crash at the failpoint just before the WAL save, a restart,
 * reads of every key, and the offline checker.
 *
 *   node examples/bug-14370/reproduce.ts --versions v3.5.4,v3.5.5 --attempts 10
 *
 * See README.md beside this file for the bug, the builds and measured results.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { checkHistory, serializeHistory } from '../../src/checker/index.ts';
import type { CheckReport } from '../../src/checker/index.ts';
import type { EtcdRequest, History, KeyValue, Operation, RangeResponse } from '../../src/domain/index.ts';
import { GofailClient } from '../../src/faults/gofail.ts';
import { renderHtmlReport } from '../../src/report/index.ts';
import { seededRandom } from '../../src/random.ts';
import { LocalEtcdCluster, type EtcdBinaries, type LocalEtcdMember } from '../../src/local/index.ts';
import { etcdBinariesAt, etcdReleaseBinaries } from '../../src/local/release-binaries.ts';
import { HistoryRecorder, RecordingClient, recordingEtcdClient } from '../../src/probes/index.ts';

const usage = `usage: node examples/bug-14370/reproduce.ts [options]
  --versions LIST     etcd releases built by test/bin/build-release.sh (default v3.5.4,v3.5.5)
  --bin-dir DIR       instead of --versions: one folder holding etcd, etcdctl and etcdutl
  --attempts N        attempts per version (default 10)
  --fault F           panic: gofail raftBeforeSave=panic (default); kill: SIGKILL under load
  --clients N         concurrent recording clients (default 8)
  --keys N            keys written and read (default 10)
  --warmup-ms MS      traffic before each crash (default 1000)
  --crashes N         crashes (and restarts) per attempt, --warmup-ms of traffic before each (default 1)
  --after-ms MS       traffic after the last restart (default 1500)
  --timeout-ms MS     request deadline (default 1000)
  --seed N            traffic seed (default 1; attempt i uses seed+i)
  --out DIR           where histories and reports of violations go (default: a temporary folder)
  --stop-on-hit       stop a version's attempts at its first violation`;

const { values: args } = parseArgs({
  options: {
    versions: { type: 'string', default: 'v3.5.4,v3.5.5' },
    'bin-dir': { type: 'string' },
    attempts: { type: 'string', default: '10' },
    fault: { type: 'string', default: 'panic' },
    clients: { type: 'string', default: '8' },
    keys: { type: 'string', default: '10' },
    'warmup-ms': { type: 'string', default: '1000' },
    crashes: { type: 'string', default: '1' },
    'after-ms': { type: 'string', default: '1500' },
    'timeout-ms': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    'stop-on-hit': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(usage);
  process.exit(0);
}
const int = (name: keyof typeof args): number => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer\n${usage}`);
  return n;
};
const fault = args.fault;
if (fault !== 'panic' && fault !== 'kill') throw new Error(`--fault must be panic or kill\n${usage}`);
const options = {
  attempts: int('attempts'),
  clients: Math.max(1, int('clients')),
  keys: Math.max(1, int('keys')),
  warmupMs: int('warmup-ms'),
  crashes: Math.max(1, int('crashes')),
  afterMs: int('after-ms'),
  timeoutMs: Math.max(1, int('timeout-ms')),
  seed: int('seed'),
  stopOnHit: args['stop-on-hit'],
};
const outRoot = args.out ?? mkdtempSync(path.join(os.tmpdir(), 'bug-14370-'));
mkdirSync(outRoot, { recursive: true });

/**
 * The failpoints at "raft Ready handled, entries not yet saved to the WAL". v3.5.4 has one,
 * raftBeforeSave; the fix (v3.5.5) saves overlapping entries earlier, before handing them to the
 * apply loop, behind a new failpoint raftBeforeSaveWaitWalSync. Arming both (where present) crashes
 * either version at its last moment before the WAL write, so the fixed version is really exercised.
 */
const walFailpoints = ['raftBeforeSaveWaitWalSync', 'raftBeforeSave'];

const prefix = '/bug14370/';
const keyName = (i: number): string => `${prefix}k${i}`;

interface Crash {
  /** How the process ended: "code 2" (gofail panic) or "signal SIGKILL"; undefined if it never did. */
  exit: string | undefined;
  /** Which failpoint fired (from etcd's log). */
  failpoint: string | undefined;
  /** When the crash was seen (recorder clock). */
  at: number;
}

interface Attempt {
  version: string;
  attempt: number;
  crashes: Crash[];
  ackedPuts: number;
  /** Acknowledged puts whose revision etcd later handed out again to another acknowledged put. */
  forgotten: { key: string; value: string; revision: number; reusedBy: string }[];
  /** Acknowledged pre-crash puts the first read of their key after the restart does not show. */
  notReadBack: { key: string; value: string; revision: number; readBack: string }[];
  verdict: CheckReport['verdict'];
  reason: string | undefined;
  durationMs: number;
  saved: string | undefined;
}

/** Puts and linearizable gets on a few keys, one request at a time per client, until stopped. */
async function traffic(clients: RecordingClient[], until: () => boolean, seed: number): Promise<void> {
  let counter = 0;
  await Promise.all(
    clients.map(async (client, id) => {
      const random = seededRandom(seed * 1000 + id);
      while (!until()) {
        const key = keyName(Math.floor(random() * options.keys));
        const request: EtcdRequest = random() < 0.6 ? { type: 'put', key, value: `c${id}-${++counter}` } : { type: 'range', key };
        const outcome = await client.execute(request);
        // The member is down: do not spin.
        if (outcome.kind !== 'ok') await sleep(20);
      }
    }),
  );
}

async function waitExit(member: LocalEtcdMember, ms: number): Promise<string | undefined> {
  const exit = await Promise.race([member.exited, sleep(ms).then(() => undefined)]);
  if (!exit) return undefined;
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

const isOk = (op: Operation): boolean => op.return !== null && op.response !== undefined && !('error' in op.response);

const putOf = (op: Operation): { key: string; value: string; revision: number } => ({
  key: (op.request as { key: string }).key,
  value: (op.request as { value: string }).value,
  revision: (op.response as { revision: number }).revision,
});

/**
 * Direct evidence, independent of the checker (exclusive cluster, unique values):
 * - forgotten: two acknowledged puts were given the same revision: etcd lost the earlier write (it
 *   was never persisted) and handed its revision out again after the restart;
 * - notReadBack: per crash, the newest acknowledged put of each key before it against the first read
 *   of that key after it, which must show that put or something newer.
 */
function lostWrites(ops: readonly Operation[], crashTimes: readonly number[]): Pick<Attempt, 'forgotten' | 'notReadBack'> {
  const puts = ops.filter((op) => isOk(op) && op.request.type === 'put').sort((a, b) => a.call - b.call);
  const firstByRevision = new Map<number, Operation>();
  const forgotten: Attempt['forgotten'] = [];
  for (const op of puts) {
    const put = putOf(op);
    const earlier = firstByRevision.get(put.revision);
    if (!earlier) firstByRevision.set(put.revision, op);
    else forgotten.push({ ...putOf(earlier), reusedBy: `${put.key}=${put.value}` });
  }
  const notReadBack: Attempt['notReadBack'] = [];
  crashTimes.forEach((crashAt, i) => {
    const nextCrash = crashTimes[i + 1] ?? Infinity;
    const newest = new Map<string, { key: string; value: string; revision: number }>();
    for (const op of puts) {
      if (op.return! > crashAt) continue;
      const put = putOf(op);
      if ((newest.get(put.key)?.revision ?? 0) < put.revision) newest.set(put.key, put);
    }
    const firstRead = new Map<string, KeyValue | null>();
    for (const op of ops) {
      if (!isOk(op) || op.request.type !== 'range' || op.request.end !== undefined || op.call < crashAt || op.call >= nextCrash) continue;
      if (!firstRead.has(op.request.key)) firstRead.set(op.request.key, (op.response as RangeResponse).kvs[0] ?? null);
    }
    for (const [key, put] of newest) {
      const read = firstRead.get(key);
      if (read === undefined) continue;
      const mod = read?.modRevision ?? 0;
      if (read === null || mod < put.revision || (mod === put.revision && read.value !== put.value)) {
        notReadBack.push({ ...put, readBack: read === null ? '(key missing)' : `${read.value}@${mod}` });
      }
    }
  });
  forgotten.sort((a, b) => a.revision - b.revision);
  return { forgotten, notReadBack };
}

/** Arms the WAL failpoints with panic; the process exit ("code 2"), or undefined if none fired in 10 s. */
async function crashAtFailpoint(member: LocalEtcdMember): Promise<string | undefined> {
  const gofail = new GofailClient(member.failpointUrl!);
  const present = new Set((await gofail.list()).map((f) => f.name));
  const armed = walFailpoints.filter((name) => present.has(name));
  for (const name of armed) {
    try {
      // panic("<name>") panics with the failpoint's name, so etcd's log tells which one fired.
      await gofail.activate(name, `panic(${JSON.stringify(name)})`);
    } catch (error) {
      // The first failpoint may already have crashed the member.
      if ((await waitExit(member, 2000)) === undefined) throw error;
    }
  }
  const exit = await waitExit(member, 10_000);
  if (exit === undefined) for (const name of armed) await gofail.deactivate(name);
  return exit;
}

async function killUnderLoad(member: LocalEtcdMember): Promise<string> {
  const exit = await member.kill();
  return exit?.signal ? `signal ${exit.signal}` : `code ${exit?.code ?? '?'}`;
}

async function runAttempt(binaries: EtcdBinaries, attempt: number): Promise<Attempt> {
  const started = performance.now();
  const cluster = await LocalEtcdCluster.start({ size: 1, failpoints: fault === 'panic', binaries });
  const member = cluster.members[0]!;
  const etcds: Etcd3[] = [];
  const recorder = new HistoryRecorder();
  const newClient = (): RecordingClient => {
    const etcd = recordingEtcdClient([member.endpoint]);
    etcds.push(etcd);
    return new RecordingClient(etcd, recorder, { timeoutMs: options.timeoutMs, member: member.name });
  };
  const crashes: Crash[] = [];
  let memberLog: string;
  try {
    let stop = false;
    const load = traffic(
      Array.from({ length: options.clients }, newClient),
      () => stop,
      options.seed + attempt,
    );
    for (let c = 0; c < options.crashes; c++) {
      await sleep(options.warmupMs);
      const exit = fault === 'panic' ? await crashAtFailpoint(member) : await killUnderLoad(member);
      crashes.push({ exit, failpoint: undefined, at: recorder.clock() });
      if (exit === undefined) break;
      await member.restart(30_000);
    }
    await sleep(options.afterMs);
    stop = true;
    await load;

    // Read every key back over a fresh connection (retrying while the member warms up).
    const reader = newClient();
    for (let k = 0; k < options.keys; k++) {
      for (let tries = 0; tries < 20; tries++) {
        if ((await reader.execute({ type: 'range', key: keyName(k) })).kind === 'ok') break;
        await sleep(100);
      }
    }
    await reader.execute({ type: 'range', key: prefix, end: `${prefix.slice(0, -1)}0` });
  } finally {
    for (const etcd of etcds) etcd.close();
    memberLog = existsSync(member.logFile) ? readFileSync(member.logFile, 'utf8') : '';
    await cluster.close();
  }
  const fired = [...memberLog.matchAll(/failpoint panic: (\w+)/g)].map((m) => m[1]);
  crashes.forEach((crash, i) => (crash.failpoint = crash.exit?.startsWith('code') ? fired[i] : undefined));

  const history: History = { meta: { kind: 'meta', mode: 'exclusive', initialRevision: 1, prefix, cluster: `etcd ${binaries.version}, 1 member` }, operations: recorder.operations, watches: [] };
  const report = checkHistory(history, { timeoutMs: 60_000 });
  const evidence = lostWrites(recorder.operations, crashes.filter((c) => c.exit !== undefined).map((c) => c.at));
  let saved: string | undefined;
  if (report.verdict !== 'linearizable' || evidence.forgotten.length > 0 || evidence.notReadBack.length > 0) {
    saved = path.join(outRoot, `${binaries.version}-attempt-${attempt}`);
    mkdirSync(saved, { recursive: true });
    writeFileSync(path.join(saved, 'history.jsonl'), serializeHistory(history));
    writeFileSync(path.join(saved, 'report.json'), `${JSON.stringify({ report, evidence }, null, 2)}\n`);
    writeFileSync(path.join(saved, 'etcd.log'), memberLog);
    writeFileSync(path.join(saved, 'report.html'), renderHtmlReport(history, report, { title: `etcd issue 14370 on ${binaries.version}, attempt ${attempt}` }));
  }
  const reason = report.linearizability.violation?.reason ?? report.linearizability.inconclusive ?? report.watch.violations[0]?.message;
  return {
    version: binaries.version,
    attempt,
    crashes,
    ackedPuts: recorder.operations.filter((op) => isOk(op) && op.request.type === 'put').length,
    ...evidence,
    verdict: report.verdict,
    reason,
    durationMs: performance.now() - started,
    saved,
  };
}

const targets: EtcdBinaries[] = args['bin-dir'] ? [etcdBinariesAt(args['bin-dir'])] : args.versions.split(',').map((v) => etcdReleaseBinaries(v.trim()));
console.log(
  `etcd issue 14370 reproduction: fault=${fault}, ${options.attempts} attempts per version, ${options.clients} clients on ${options.keys} keys, ` +
    `${options.warmupMs} ms warm-up, ${options.afterMs} ms after the restart; reports of failed attempts under ${outRoot}`,
);
const summaries: string[] = [];
for (const binaries of targets) {
  const versionStarted = performance.now();
  let hits = 0;
  let crashed = 0;
  let firstHit: { attempt: number; afterMs: number } | undefined;
  for (let i = 1; i <= options.attempts; i++) {
    const a = await runAttempt(binaries, i);
    const real = a.crashes.filter((c) => c.exit !== undefined);
    crashed += real.length;
    const hit = a.verdict === 'violation';
    if (hit) {
      hits++;
      firstHit ??= { attempt: i, afterMs: performance.now() - versionStarted };
    }
    const crashText = a.crashes.map((c) => (c.exit === undefined ? 'no crash (failpoint never hit)' : `${c.exit}${c.failpoint ? ` at ${c.failpoint}` : ''}`)).join(', ');
    const lines = [`${a.version} #${i}: ${a.verdict.toUpperCase()}, crashed: ${crashText}; ${a.ackedPuts} acknowledged puts, ${(a.durationMs / 1000).toFixed(1)} s`];
    if (a.reason) lines.push(`    checker: ${a.reason}`);
    for (const f of a.forgotten.slice(0, 3)) lines.push(`    lost: put ${f.key}=${f.value} acknowledged at revision ${f.revision}; after the restart etcd gave revision ${f.revision} to ${f.reusedBy}`);
    if (a.forgotten.length > 3) lines.push(`    lost: ... ${a.forgotten.length} acknowledged puts in all`);
    for (const n of a.notReadBack.slice(0, 3)) lines.push(`    not read back: put ${n.key}=${n.value}@${n.revision}, first read after the restart: ${n.readBack}`);
    if (a.saved) lines.push(`    saved: ${a.saved}`);
    console.log(lines.join('\n'));
    if (hit && options.stopOnHit) break;
  }
  const total = (performance.now() - versionStarted) / 1000;
  summaries.push(
    `${binaries.version}: ${hits}/${options.attempts} attempts found a violation (${crashed} crashes), ` +
      (firstHit ? `first at attempt ${firstHit.attempt} after ${(firstHit.afterMs / 1000).toFixed(1)} s` : 'none found') +
      `, ${total.toFixed(1)} s in all`,
  );
}
console.log(`\nSummary\n${summaries.map((s) => `  ${s}`).join('\n')}`);
