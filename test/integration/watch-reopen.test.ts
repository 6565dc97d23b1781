// A run with spec.watch.reopen against a real 3-member etcd cluster (the pinned release): watches opened at
// past and future revisions beside compaction, some cancelled as compacted and resumed at the compaction
// revision, and the run passes every check. etcd issue 20221's watches on future revisions, without the
// snapshot that breaks them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RuntimeMember, WatchStream } from '../../src/domain/index.ts';
import { LocalEtcdCluster } from '../../src/local/index.ts';
import { readHistoryDirectory } from '../../src/probes/history-segment-reader.ts';
import { executeRun } from '../../src/run/engine.ts';
import { defaultRobustnessRun } from '../../src/run/manifest.ts';
import { Registry, RunMetrics } from '../../src/run/metrics.ts';

/** The revision of the stream's first event, if any. */
const firstEvent = (stream: WatchStream): number | undefined => stream.responses.find((r) => r.events.length > 0)?.events[0]?.modRevision;

describe('watches reopened at past and future revisions on a real cluster', { timeout: 180_000 }, () => {
  let cluster: LocalEtcdCluster;
  let workDir: string;

  before(async () => {
    cluster = await LocalEtcdCluster.start({ size: 3 });
    workDir = mkdtempSync(path.join(os.tmpdir(), 'watch-reopen-'));
  });

  after(async () => {
    await cluster?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('a run with reopened watches and compaction passes, and its past watches resume at the compaction revision', async () => {
    const run = defaultRobustnessRun({ name: 'watch-reopen', defaultMode: 'exclusive' });
    run.spec.seed = 20221;
    run.spec.durationMs = 8000;
    run.spec.traffic.qps = { target: 150, burst: 150, min: 0 };
    run.spec.traffic.compaction = { enabled: true, intervalMs: 1000, allowShared: false };
    run.spec.watch.progressIntervalMs = 250;
    run.spec.watch.reopen = { intervalMs: 200, lifetimeMs: 1500, revisionOffset: { min: -200, max: 200 } };
    const members: RuntimeMember[] = cluster.members.map((m) => ({ name: m.name, endpoint: m.endpoint, running: m.running }));
    const historyDir = path.join(workDir, 'history');
    const result = await executeRun({
      run,
      clusterName: 'test',
      members,
      historyDir,
      metrics: new RunMetrics(new Registry(), { run: 'watch-reopen', cluster: 'test' }),
    });
    assert.equal(result.verdict, 'linearizable', result.reason);
    assert.ok(result.report, 'the offline re-check ran');
    assert.deepEqual(result.report.watch.violations, []);
    assert.equal(result.watch.liveViolations, 0);
    assert.ok((result.operations.byType['compact']?.ok ?? 0) > 0, 'compactions ran');

    const history = readHistoryDirectory(historyDir);
    const streams = history.watches;
    const initialRevision = history.meta?.initialRevision ?? 0;
    // Beyond the three long-lived watches from the start: reopened ones, at revisions other than the start.
    const reopened = streams.filter((s) => (s.request.startRevision ?? 0) !== initialRevision + 1);
    assert.ok(reopened.length > 20, `only ${reopened.length} reopened watch streams`);
    // Reopened watches were reached by the store and delivered from their start revision on.
    const delivering = reopened.filter((s) => {
      const first = firstEvent(s);
      return first !== undefined && first >= (s.request.startRevision ?? 0);
    });
    assert.ok(delivering.length > 0, 'some reopened watches delivered events');
    // Cancelled as compacted, then resumed exactly at the compaction revision on the next stream.
    const compactions = new Set(streams.flatMap((s) => s.responses.map((r) => r.compactRevision).filter((c): c is number => c !== undefined)));
    assert.ok(compactions.size > 0, 'some past watches were below a compaction');
    assert.ok(
      streams.some((s) => compactions.has(s.request.startRevision ?? -1)),
      'a watch resumed at a compaction revision',
    );
  });
});
