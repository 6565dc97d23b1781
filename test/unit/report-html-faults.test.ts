// Fault lines on the HTML report's timeline, checked on the rendered string (the Chromium tests in
// test/integration/report-html.test.ts cover the page's script and layout).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderHtmlReport } from '../../src/report/index.ts';
import { faultSpans } from '../../src/report/timeline.ts';
import type { CheckReport } from '../../src/checker/result.ts';
import type { FaultEvent, History, Operation } from '../../src/domain/index.ts';

const ms = 1_000_000;
const XSS = '<img src=x onerror=alert(1)>';

function history(faults: FaultEvent[] | undefined): History {
  const operations: Operation[] = [];
  for (let i = 0; i < 20; i++) {
    operations.push({ client: i % 2, call: i * 5 * ms, return: (i * 5 + 4) * ms, request: { type: 'put', key: 'k', value: `v${i}` }, response: { revision: i + 2 } });
  }
  return { meta: undefined, operations, watches: [], ...(faults === undefined ? {} : { faults }) };
}

const report: CheckReport = {
  verdict: 'linearizable',
  linearizability: { verdict: 'linearizable', operations: 20, linearization: Array.from({ length: 20 }, (_, i) => i) },
  watch: { checked: 0, violations: [] },
  elapsedMs: 1,
};

const faults: FaultEvent[] = [
  { kind: 'fault', id: 1, time: 10 * ms, phase: 'inject', fault: 'delay', targets: ['m1'], params: { delayMs: 75, jitterMs: 50 } },
  { kind: 'fault', id: 1, time: 11 * ms, phase: 'verified', fault: 'delay', targets: ['m1'], detail: 'latency up' },
  { kind: 'fault', id: 2, time: 20 * ms, phase: 'inject', fault: 'kill', targets: [XSS] },
  { kind: 'fault', id: 1, time: 40 * ms, phase: 'heal', fault: 'delay', targets: ['m1'], detail: 'rules removed' },
  { kind: 'fault', id: 3, time: 60 * ms, phase: 'failed', fault: 'partition', targets: [], detail: 'agent unreachable' },
];

/** The opening tag of the element with this data-fault id. */
function band(html: string, id: number): string {
  const tag = new RegExp(`<div class="[^"]*" data-fault="${id}"[^>]*>`).exec(html)?.[0];
  assert.ok(tag !== undefined, `no band for fault ${id}`);
  return tag;
}

describe('HTML report: faults on the timeline', () => {
  test('each injection is a band in a faults lane, from inject to heal, with its name, targets and phases in the tooltip', () => {
    const html = renderHtmlReport(history(faults), report);
    assert.match(html, /<div class="lane fault-lane" id="fault-lane"><div class="lane-name">faults<\/div>/);
    // The faults lane sits right under the time axis, above the client lanes.
    assert.ok(html.indexOf('id="fault-lane"') < html.indexOf('data-client="0"'));
    const delay = band(html, 1);
    assert.match(delay, /class="fault fault-network"/);
    // 10 ms to 40 ms of a timeline from 0 to 99 ms.
    assert.match(delay, /left:10\.1010%;width:30\.3030%;/);
    assert.match(delay, /title="fault #1 delay on m1\nparams: delayMs=75 jitterMs=50\ninject at \+10 ms\nverified at \+11 ms: latency up\nheal at \+40 ms: rules removed"/);
    assert.match(html, /data-fault="1"[^>]*><span class="label">delay m1<\/span>/);
    // An instantaneous fault is a marker; a member name is escaped.
    const kill = band(html, 2);
    assert.match(kill, /class="fault fault-process instant"/);
    assert.ok(kill.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(!html.includes(XSS));
    // A failed one is marked so.
    assert.match(band(html, 3), /class="fault fault-network instant failed"/);
    assert.match(band(html, 3), /failed at \+60 ms: agent unreachable/);
    assert.match(html, /data-stat="faults"><div class="value">3</);
    assert.match(html, /<i class="swatch fault"><\/i>fault \(inject to heal\)/);
  });

  test('concurrent faults get rows of their own', () => {
    const overlapping: FaultEvent[] = [
      { kind: 'fault', id: 1, time: 10 * ms, phase: 'inject', fault: 'pause', targets: ['m1'] },
      { kind: 'fault', id: 2, time: 12 * ms, phase: 'inject', fault: 'blackhole', targets: ['m2'] },
      { kind: 'fault', id: 1, time: 30 * ms, phase: 'heal', fault: 'pause', targets: ['m1'] },
      { kind: 'fault', id: 2, time: 35 * ms, phase: 'heal', fault: 'blackhole', targets: ['m2'] },
      { kind: 'fault', id: 3, time: 50 * ms, phase: 'inject', fault: 'pause', targets: ['m3'] },
    ];
    const html = renderHtmlReport(history(overlapping), report);
    assert.match(band(html, 1), /top:3px/);
    assert.match(band(html, 2), /top:31px/);
    // Never healed: drawn to the end of the timeline, back in the first row.
    assert.match(band(html, 3), /top:3px/);
    assert.match(band(html, 3), /width:49\.4949%/);
  });

  test('faultSpans groups lines by id', () => {
    const spans = faultSpans(faults);
    assert.deepEqual(spans.map((s) => [s.id, s.fault, s.start, s.end, s.instantaneous, s.failed]), [
      [1, 'delay', 10 * ms, 40 * ms, false, false],
      [2, 'kill', 20 * ms, undefined, true, false],
      [3, 'partition', 60 * ms, 60 * ms, false, true],
    ]);
  });

  test('a history without faults has no faults lane, stat or legend entry', () => {
    const html = renderHtmlReport(history(undefined), report);
    const body = html.slice(html.indexOf('<body>'));
    for (const part of ['fault-lane', 'data-fault', 'data-stat="faults"', 'swatch fault']) assert.ok(!body.includes(part), part);
  });
});

describe('how the order was found, on the report', () => {
  test('the revision order, or the search window with its reason (escaped)', () => {
    const byRevision = renderHtmlReport(history(undefined), { ...report, linearizability: { ...report.linearizability, method: 'revision' } });
    assert.match(byRevision, /<div class="value">revision order<\/div><div class="label">decided by<\/div>/);
    assert.doesNotMatch(byRevision, /search-window/);
    const window = { reason: `operation 7 ${XSS}`, fromRevision: 6, operations: 14 };
    const bySearch = renderHtmlReport(history(undefined), { ...report, linearizability: { ...report.linearizability, method: 'search', searchWindow: window } });
    assert.match(bySearch, /<div class="value">search from revision 6<\/div>/);
    assert.match(bySearch, /the search decided from revision 6 \(14 operations\): operation 7 &lt;img/);
    assert.ok(!bySearch.includes(XSS));
  });
});
