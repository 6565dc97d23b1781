// Per-run etcd flags (run --local --etcd-flag, a bug's etcdFlags) reach the local members: with
// --experimental-watch-progress-notify-interval=200ms a watch that asked for progress notifications gets
// them without requesting any (etcd's default interval is 10 minutes); an unknown flag stops the start.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { EtcdStartError, LocalMemberRuntime } from '../../src/local/index.ts';
import { monotonicNs, recordingEtcdClient } from '../../src/probes/index.ts';
import { WatchProbe } from '../../src/probes/watch-probe.ts';

describe('per-run etcd flags on a local cluster', { timeout: 120_000 }, () => {
  test('a flag given for the run reaches every member', async () => {
    const runtime = new LocalMemberRuntime({ size: 1, failpoints: false, etcdFlags: ['--experimental-watch-progress-notify-interval=200ms'] });
    try {
      await runtime.create();
      const etcd = recordingEtcdClient(runtime.endpoints());
      let nextId = 1;
      const probe = WatchProbe.start(etcd, {
        prefix: '/flags/',
        startRevision: 0,
        clock: monotonicNs,
        progressNotify: true,
        progressIntervalMs: 0, // no progress_request: only etcd's own periodic notifications
        nextStreamId: () => nextId++,
        onStreamOpened: () => undefined,
        onResponse: () => undefined,
      });
      try {
        // Waits for the first notification (bounded only so a broken flag fails instead of hanging).
        const deadline = Date.now() + 30_000;
        while (probe.progressNotifications === 0 && Date.now() < deadline) await sleep(50);
        assert.ok(probe.progressNotifications > 0, 'etcd sent periodic progress notifications: the interval flag reached it');
      } finally {
        await probe.close();
        etcd.close();
      }
    } finally {
      await runtime.close();
    }
  });

  test('a flag etcd does not know stops the cluster from starting', async () => {
    const runtime = new LocalMemberRuntime({ size: 1, failpoints: false, etcdFlags: ['--no-such-etcd-flag=1'] });
    try {
      await assert.rejects(runtime.create(), (error: unknown) => {
        assert.ok(error instanceof EtcdStartError, String(error));
        // Exit code 2: Go's flag package refusing an unknown flag (the member's log is removed with the cluster).
        assert.match(error.message, /process exited \(\{"code":2,/);
        return true;
      });
    } finally {
      await runtime.close();
    }
  });
});
