// Histories that survive a crash (issue #16, item 2): a recorder killed at any byte leaves a prefix of its
// history, and `check` of that prefix must give no false violation. A real faulted run (3 etcd members,
// kill and pause faults) is recorded, then cut at random byte offsets, as one file and as segments; and a
// real `etcd-robustness run --local` is killed with SIGKILL mid-run and its history checked.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { checkHistory } from '../../src/checker/check.ts';
import type { FaultEvent, History, Invocation, Operation, WatchResponse, WatchStream } from '../../src/domain/index.ts';
import { LocalMemberRuntime } from '../../src/local/index.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { segmentFileName } from '../../src/probes/history-segments.ts';
import { HistoryFileWriter } from '../../src/probes/history-writer.ts';
import { seededRandom } from '../../src/random.ts';
import { executeRun } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';

const cli = new URL('../../src/cli.ts', import.meta.url).pathname;

/** The segments of a history directory, oldest first. */
function segmentsOf(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^history-\d+\.jsonl$/.test(name))
    .sort()
    .map((name) => path.join(dir, name));
}

/**
 * What a crash at byte `offset` of the segments' concatenation leaves: the earlier segments whole, the one
 * holding the offset cut there, none after it.
 */
function cutDirectory(segments: Buffer[], offset: number, into: string): void {
  mkdirSync(into, { recursive: true });
  let start = 0;
  for (const [i, data] of segments.entries()) {
    const keep = Math.min(data.length, offset - start);
    writeFileSync(path.join(into, segmentFileName(i + 1)), data.subarray(0, keep));
    start += data.length;
    if (start >= offset) return;
  }
}

const isInvoke = (line: string): boolean => line.startsWith('{"kind":"invoke"');
const isCompletion = (line: string): boolean => line.startsWith('{"client"');

/** The whole lines of the segments: without a torn last one (which may end in a `}` of its own). */
function wholeLines(files: string[]): string[] {
  const lines = files.flatMap((file) => readFileSync(file, 'utf8').split('\n'));
  const last = lines.at(-1) ?? '';
  try {
    if (last !== '') JSON.parse(last);
  } catch {
    lines.pop();
  }
  return lines;
}

interface PrefixTally {
  checked: number;
  verdicts: Record<string, number>;
  tornTails: number;
  /** Prefixes with operations in flight at the cut (invoked, not completed): unknown outcomes. */
  inFlight: number;
  violations: string[];
}

/** Checks every cut of the segments (concatenated) at `offsets`; each operation must be in the prefix once. */
function checkPrefixes(segments: Buffer[], offsets: number[], scratch: string): PrefixTally {
  const tally: PrefixTally = { checked: 0, verdicts: {}, tornTails: 0, inFlight: 0, violations: [] };
  for (const offset of offsets) {
    const dir = path.join(scratch, `cut-${offset}`);
    cutDirectory(segments, offset, dir);
    const history = readHistoryDirectory(dir);
    const lines = wholeLines(segmentsOf(dir));
    const invoked = lines.filter(isInvoke).length;
    const completed = lines.filter(isCompletion).length;
    assert.equal(history.operations.length, invoked, `cut at ${offset}: one operation per invoke line`);
    if (invoked > completed) tally.inFlight++;
    if (history.tornTail) tally.tornTails++;
    const report = checkHistory(history, { timeoutMs: 20_000 });
    tally.checked++;
    tally.verdicts[report.verdict] = (tally.verdicts[report.verdict] ?? 0) + 1;
    if (report.verdict === 'violation') {
      const watch = report.watch.violations[0];
      tally.violations.push(`cut at byte ${offset}: ${report.linearizability.violation?.reason ?? (watch ? `watch ${watch.property}: ${watch.message}` : 'stale read')}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return tally;
}

/** Writes the recorded lines again through a HistoryFileWriter with small segments (as a long run would). */
function resegment(text: string, dir: string, maxSegmentBytes: number): HistoryFileWriter {
  const writer = HistoryFileWriter.open(dir, { maxSegmentBytes });
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const raw = JSON.parse(line) as { kind?: string; id?: number; request?: unknown; response?: WatchResponse };
    if (raw.kind === 'meta') writer.writeMeta(raw as History['meta'] & object);
    else if (raw.kind === 'invoke') writer.writeInvoke(raw as Invocation);
    else if (raw.kind === 'fault') writer.writeFault(raw as FaultEvent);
    else if (raw.kind === 'watch' && raw.request !== undefined) {
      const { kind, ...stream } = raw;
      assert.equal(kind, 'watch');
      writer.openWatch({ ...(stream as Omit<WatchStream, 'responses'>), responses: [] });
    } else if (raw.kind === 'watch') writer.writeWatchResponse(raw.id!, raw.response!);
    else writer.writeOperation(raw as Operation);
  }
  writer.close();
  return writer;
}

/** Pids of processes whose command line mentions `dir` (the etcd members and agents of a killed run). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z /s.test(stat)) continue; // a zombie: already dead
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir) || readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // It exited meanwhile, or is not ours to read.
    }
  }
  return pids;
}

describe('histories cut by a crash', { timeout: 150_000 }, () => {
  let runtime: LocalMemberRuntime;
  let workDir: string;

  before(async () => {
    workDir = mkdtempSync(path.join(os.tmpdir(), 'history-crash-prefix-'));
    runtime = new LocalMemberRuntime({ size: 3, failpoints: false, agents: {} });
    await runtime.create();
  });

  after(async () => {
    await runtime?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('a faulted run cut at 60 random bytes (and 20 more across segments): no prefix is a violation', async (t) => {
    const run = defaultRobustnessRun({ name: 'crash-prefix', defaultMode: 'exclusive' });
    run.spec.seed = 16;
    run.spec.durationMs = 10_000;
    run.spec.traffic.qps = { target: 300, burst: 300, min: 0 };
    run.spec.watch.progressIntervalMs = 250;
    run.spec.faults = {
      choices: [
        { fault: 'kill', weight: 1, target: 'random', params: {} },
        { fault: 'pause', weight: 1, target: 'random', params: {} },
      ],
      maxConcurrentFaults: 1,
      intervalMs: { min: 1500, max: 1500 },
      durationMs: { min: 1500, max: 1500 },
      recoveryTimeoutMs: 20_000,
    };
    const historyDir = path.join(workDir, 'run', 'history');
    const result = await executeRun({
      run,
      clusterName: 'crash-prefix',
      members: runtime.members(),
      runtime,
      agentToken: runtime.agentToken!,
      historyDir,
      metrics: new RunMetrics(new Registry(), { run: 'crash-prefix', cluster: 'crash-prefix' }),
    });
    assert.notEqual(result.verdict, 'violation', result.reason);
    assert.ok(result.faults.injected >= 2, `faults were injected: ${JSON.stringify(result.faults.events.map((e) => `${e.fault} ${e.phase}`))}`);
    assert.ok(result.operations.unknown + result.operations.failed > 0, 'the faults left failed or unknown operations');
    const full = readHistoryDirectory(historyDir);
    assert.equal(full.operations.length, result.operations.ok + result.operations.failed + result.operations.unknown, 'each operation once, invoke and completion paired');

    const seed = Number(process.env['CRASH_PREFIX_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    t.diagnostic(`cut points from seed ${seed} (CRASH_PREFIX_SEED=${seed} draws the same offsets)`);
    const random = seededRandom(seed);
    const original = segmentsOf(historyDir).map((file) => readFileSync(file));
    const total = original.reduce((sum, s) => sum + s.length, 0);
    const offsets = (count: number, bytes: number): number[] => Array.from({ length: count }, () => 1 + Math.floor(random() * (bytes - 1)));

    const single = checkPrefixes(original, offsets(60, total), path.join(workDir, 'cuts'));
    t.diagnostic(`one file, ${total} bytes, ${full.operations.length} operations: ${JSON.stringify(single)}`);
    assert.deepEqual(single.violations, []);
    assert.equal(single.checked, 60);
    assert.ok(single.tornTails > 0 && single.inFlight > 0, 'the cuts tore lines and left operations in flight');

    // The same recording in ~8 segments: cuts keep the earlier segments whole, as a crash would.
    const text = original.map((b) => b.toString('utf8')).join('');
    const segmented = resegment(text, path.join(workDir, 'segmented'), Math.ceil(total / 8));
    assert.ok(segmented.segments.length >= 6, `${segmented.segments.length} segments`);
    assert.equal(readHistoryDirectory(segmented.dir).operations.length, full.operations.length);
    const parts = segmented.segments.map((file) => readFileSync(file));
    const across = checkPrefixes(parts, offsets(20, parts.reduce((sum, s) => sum + s.length, 0)), path.join(workDir, 'segment-cuts'));
    t.diagnostic(`${parts.length} segments: ${JSON.stringify(across)}`);
    assert.deepEqual(across.violations, []);

    // The defect this fixes, on this recording: a cut just after a watch delivered a write whose completion
    // line came later. With invoke lines the write is an unknown outcome the watch resolves; without them
    // (today's format before this change) the event is "not in the history", a false violation.
    const lines = text.split('\n');
    const completedAt = new Map<string, number>();
    lines.forEach((line, i) => {
      if (!isCompletion(line)) return;
      const op = JSON.parse(line) as Operation;
      const puts = op.request.type === 'put' ? [op.request] : op.request.type === 'txn' ? [...op.request.success, ...op.request.failure] : [];
      for (const p of puts) if (p.type === 'put') completedAt.set(p.value, i);
    });
    // After some operation completed: a prefix without any operation is inconclusive, not a verdict.
    const firstCompletion = lines.findIndex((line) => isCompletion(line));
    const early = lines.findIndex((line, i) => {
      if (i <= firstCompletion || !line.startsWith('{"kind":"watch"') || !line.includes('"response"')) return false;
      const { response } = JSON.parse(line) as { response: WatchResponse };
      return response.events.some((e) => e.type === 'put' && e.value !== undefined && (completedAt.get(e.value) ?? -1) > i);
    });
    assert.ok(early > 0, 'some watch event arrived before its write completed');
    const prefix = `${lines.slice(0, early + 1).join('\n')}\n`;
    const withInvokes = checkHistory(readHistoryFromText(prefix, workDir, 'with-invokes'));
    assert.notEqual(withInvokes.verdict, 'violation', JSON.stringify(withInvokes.watch.violations[0]));
    const withoutInvokes = checkHistory(readHistoryFromText(prefix.split('\n').filter((l) => !isInvoke(l)).join('\n'), workDir, 'without-invokes'));
    assert.equal(withoutInvokes.verdict, 'violation');
    // Which check reports the missing write depends on the recording: an operation that read or compared the
    // value before the cut makes linearizability fail first (then the watch checks have no order to check
    // against); otherwise the watch event is "not in the history".
    const watchSaysMissing = withoutInvokes.watch.violations.some((v) => v.property === 'reliable' && /not in the history/.test(v.message));
    assert.ok(
      watchSaysMissing || withoutInvokes.linearizability.verdict === 'violation',
      JSON.stringify({ watch: withoutInvokes.watch.violations.map((v) => v.message), linearizability: withoutInvokes.linearizability.violation?.reason }),
    );
  });

  test('kill -9 of `etcd-robustness run --local` mid-run: check on what it left gives no violation', async (t) => {
    const dir = path.join(workDir, 'cli');
    const tmp = path.join(dir, 'tmp'); // the run's members live here, so what the kill leaves can be found
    mkdirSync(tmp, { recursive: true });
    const report = path.join(dir, 'report');
    // Long pauses: requests pinned to the paused member hang until their deadline, so the kill finds some in flight.
    const manifest = path.join(dir, 'run.yaml');
    writeFileSync(
      manifest,
      [
        'apiVersion: etcd.robustness.io/v1alpha1',
        'kind: RobustnessRun',
        'metadata:',
        '  name: killed',
        'spec:',
        '  duration: 60s',
        '  seed: 16',
        '  faults:',
        '    maxConcurrentFaults: 1',
        '    interval: 500ms',
        '    duration: 3s',
        '    choices:',
        '      - fault: pause',
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [cli, 'run', '--local', manifest, '--report', report, '--progress-interval', '1s'], {
      cwd: dir,
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    try {
      // Killed while a pause is in place, after a few seconds of traffic.
      const deadline = Date.now() + 60_000;
      const progress = (): string[] => stderr.split('\n').filter((line) => line.includes('ops/s'));
      while (progress().length < 4 || !/faults pause/.test(progress().at(-1) ?? '')) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `the run did not get going:\n${stderr}`);
        await sleep(50);
      }
      assert.ok(processesUnder(tmp).length >= 3, 'the members are found by their folder (so "none left" below means something)');
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // Its etcd members and agents die with it (parent-death signal) unless setpriv is missing: stop any left.
      for (let i = 0; i < 50 && processesUnder(tmp).length > 0; i++) {
        for (const pid of processesUnder(tmp)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Gone already.
          }
        }
        await sleep(100);
      }
    }
    assert.deepEqual(processesUnder(tmp), [], 'no process of the killed run is left');

    const historyDir = path.join(report, 'history');
    const lines = wholeLines(segmentsOf(historyDir));
    const inFlight = lines.filter(isInvoke).length - lines.filter(isCompletion).length;
    t.diagnostic(`${lines.length} lines, ${inFlight} operations in flight at the kill`);
    assert.ok(inFlight > 0, 'the kill left operations in flight (each would have been a write the watch saw and the history lacked)');
    const check = spawnSync(process.execPath, [cli, 'check', '--json', historyDir], { encoding: 'utf8' });
    const [outcome] = JSON.parse(check.stdout) as { verdict: string; operations: number; reason?: string }[];
    t.diagnostic(`check: exit ${check.status}, ${JSON.stringify(outcome)}`);
    assert.ok(outcome && outcome.verdict !== 'violation' && outcome.verdict !== 'error', `${check.stdout}${check.stderr}`);
    assert.ok([0, 2].includes(check.status ?? -1), `exit ${check.status}`);
    assert.ok(outcome.operations > 100, `${outcome.operations} operations recorded`);
  });
});

function readHistoryFromText(text: string, workDir: string, name: string): History {
  const dir = path.join(workDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, segmentFileName(1)), text);
  return readHistoryDirectory(dir);
}
