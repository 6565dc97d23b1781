// The HTML report of a checked history, loaded in a real headless Chromium (Debian's, no npm browser package).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_TIMELINE_OPERATIONS, renderHtmlReport } from '../../src/report/index.ts';
import type { CheckReport } from '../../src/checker/result.ts';
import type { History, Operation } from '../../src/domain/index.ts';
import { dumpDom, processesUsing, requireChromium, screenshot } from '../helpers/chromium.ts';

const artifacts = path.resolve(import.meta.dirname, '../artifacts');
const XSS = '</script><img src=x onerror=alert(1)>';
const ms = 1_000_000;

/** Three clients: puts that return, a read of a value never written (XSS payload) and a put that timed out. */
function violationHistory(): History {
  const operations: Operation[] = [
    { client: 0, call: 0, return: 8 * ms, request: { type: 'put', key: 'k', value: 'v1' }, response: { revision: 2 }, member: 'etcd-0' },
    { client: 1, call: 2 * ms, return: 9 * ms, request: { type: 'range', key: 'k' }, response: { revision: 2, kvs: [{ key: 'k', value: 'v1', modRevision: 2, createRevision: 2, version: 1 }] }, member: 'etcd-1' },
    { client: 2, call: 4 * ms, return: null, request: { type: 'put', key: 'k', value: 'v2' }, member: 'etcd-2', error: 'context deadline exceeded' },
    { client: 0, call: 12 * ms, return: 19 * ms, request: { type: 'put', key: 'other', value: 'x' }, response: { revision: 3 }, member: 'etcd-0' },
    { client: 1, call: 14 * ms, return: 22 * ms, request: { type: 'range', key: 'k' }, response: { revision: 3, kvs: [{ key: 'k', value: XSS, modRevision: 3, createRevision: 2, version: 2 }] }, member: 'etcd-1' },
    {
      client: 0,
      call: 24 * ms,
      return: 31 * ms,
      request: { type: 'txn', compare: [{ key: 'k', target: 'mod', result: '=', value: 2 }], success: [{ type: 'put', key: 'k', value: 'v3' }], failure: [{ type: 'range', key: 'k' }] },
      response: { revision: 3, succeeded: false, results: [{ revision: 3, kvs: [{ key: 'k', value: 'v1' }] }] },
    },
  ];
  return {
    meta: { kind: 'meta', seed: 42, cluster: 'three-members', profile: 'partition', mode: 'exclusive', initialRevision: 1 },
    operations,
    watches: [{ id: 7, client: 1, request: { key: 'k' }, responses: [{ time: 10 * ms, revision: 2, events: [{ type: 'put', key: 'k', value: 'v1', modRevision: 2 }] }] }],
  };
}

const BAD_READ = 4;
const REASON = `get k returned "${XSS}" (mod revision 3), but after the prefix k holds "v1" (mod revision 2) or "v2" (mod revision 3)`;

function violationReport(): CheckReport {
  return {
    verdict: 'violation',
    linearizability: {
      verdict: 'violation',
      operations: 6,
      violation: {
        prefix: [0, 1, 3],
        unplaceable: [BAD_READ, 2],
        states: [
          { revision: 3, compactRevision: 0, kvs: [{ key: 'k', value: 'v1', modRevision: 2, createRevision: 2, version: 1 }, { key: 'other', value: 'x', modRevision: 3, createRevision: 3, version: 1 }], leases: [] },
          { revision: 4, compactRevision: 0, kvs: [{ key: 'k', value: 'v2', modRevision: 4, createRevision: 2, version: 2 }, { key: 'other', value: 'x', modRevision: 3, createRevision: 3, version: 1 }], leases: [] },
        ],
        reason: REASON,
      },
    },
    watch: { checked: 1, violations: [{ property: 'ordered', watch: 7, message: `event for ${XSS} at revision 3 came after revision 4`, events: [{ type: 'put', key: 'k', value: 'v1', modRevision: 2 }] }] },
    elapsedMs: 12,
  };
}

/** A long linearizable history: two clients alternating puts and reads, more operations than the timeline draws. */
function bigLinearizable(count: number): { history: History; report: CheckReport } {
  const operations: Operation[] = [];
  for (let i = 0; i < count; i++) {
    const client = i % 2;
    const call = i * 1000;
    operations.push(
      client === 0
        ? { client, call, return: call + 900, request: { type: 'put', key: `key-${i % 10}`, value: `v${i}` }, response: { revision: i + 2 } }
        : { client, call, return: call + 900, request: { type: 'range', key: `key-${(i - 1) % 10}` }, response: { revision: i + 1, kvs: [{ key: `key-${(i - 1) % 10}`, value: `v${i - 1}` }] } },
    );
  }
  return {
    history: { meta: undefined, operations, watches: [] },
    report: {
      verdict: 'linearizable',
      linearizability: { verdict: 'linearizable', operations: count, linearization: operations.map((_, i) => i) },
      watch: { checked: 0, violations: [] },
      elapsedMs: 250,
    },
  };
}

/** The opening tag of the element carrying `attribute` in a serialized DOM. */
function openingTag(dom: string, attribute: string): string {
  const match = new RegExp(`<[a-z]+\\b[^>]*\\b${attribute}[^>]*>`).exec(dom);
  assert.ok(match, `no element with ${attribute}`);
  return match[0];
}

function classesOf(tag: string): string[] {
  return (/\bclass="([^"]*)"/.exec(tag)?.[1] ?? '').split(/\s+/);
}

/** What a text node serializes as in the dumped DOM. */
function asText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

describe('HTML report in headless Chromium', { timeout: 180_000 }, () => {
  let root: string;
  let violationFile: string;

  before(() => {
    requireChromium();
    root = mkdtempSync(path.join(os.tmpdir(), 'report-html-'));
    mkdirSync(artifacts, { recursive: true });
    violationFile = path.join(root, 'violation.html');
    writeFileSync(violationFile, renderHtmlReport(violationHistory(), violationReport(), { title: `Run ${XSS}` }));
  });

  after(() => {
    if (root === undefined) return;
    const leftover = processesUsing(root);
    rmSync(root, { recursive: true, force: true });
    assert.deepEqual(leftover, [], 'chromium processes outlived the test');
  });

  test('the file is self-contained: no network references, data escaped inside its script tag', () => {
    const html = readFileSync(violationFile, 'utf8');
    assert.doesNotMatch(html, /<[a-z][^>]*\s(src|href)\s*=/i, 'no external resources');
    assert.doesNotMatch(html, /https?:\/\//, 'no URLs');
    assert.doesNotMatch(html, /@import|url\(/, 'no CSS fetches');
    const data = /<script type="application\/json" id="report-data">([^]*?)<\/script>/.exec(html)?.[1];
    assert.ok(data !== undefined);
    assert.ok(!data.includes('<'), 'no < inside the JSON script tag');
    assert.equal((JSON.parse(data) as { ops: Record<string, { response?: { kvs?: { value?: string }[] } }> }).ops[String(BAD_READ)]?.response?.kvs?.[0]?.value, XSS);
    assert.equal(html.match(/<script\b/g)?.length, 2, 'exactly the data and the code scripts');
  });

  test('violation: the unplaceable read is highlighted, the reason and every client lane are shown', async () => {
    const dom = await dumpDom(root, violationFile);
    assert.match(openingTag(dom, 'data-ready="true"'), /data-verdict="violation"/, 'the script ran to completion');

    const bad = classesOf(openingTag(dom, `data-op="${BAD_READ}"`));
    assert.ok(bad.includes('op') && bad.includes('unplaceable') && bad.includes('first-unplaceable'), `classes ${bad.join(' ')}`);
    assert.ok(classesOf(openingTag(dom, 'data-op="2"')).includes('unknown'), 'the timed-out put is drawn as unknown outcome');
    assert.ok(classesOf(openingTag(dom, 'data-op="2"')).includes('unplaceable'));
    assert.ok(!classesOf(openingTag(dom, 'data-op="0"')).includes('unplaceable'));
    for (let i = 0; i < 6; i++) openingTag(dom, `data-op="${i}"`);

    // Prefix steps 1..3 on operations 0, 1 and 3.
    for (const [op, step] of [[0, 1], [1, 2], [3, 3]] as const) {
      assert.match(dom, new RegExp(`data-op="${op}"[^>]*><i class="step">${step}</i>`));
    }

    assert.ok(dom.includes(asText(REASON)), 'the reason text is shown');
    for (const client of [0, 1, 2]) {
      assert.match(dom, new RegExp(`<div class="lane" data-client="${client}"><div class="lane-name">client ${client}</div>`));
    }

    // Candidate states and watch violations.
    assert.match(dom, /<div class="state" data-state="0">/);
    assert.match(dom, /<div class="state" data-state="1">/);
    assert.match(dom, /<tr class="watch-violation" data-watch="7"><td><span class="tag">ordered<\/span><\/td><td>7<\/td>/);
    assert.match(dom, /data-stat="watch violations"><div class="value">1</);
    assert.match(dom, /data-stat="clients"><div class="value">3</);

    // The script selected the bad read on load: its full response is in the details panel, as text.
    assert.match(openingTag(dom, 'id="details"'), new RegExp(`data-showing="${BAD_READ}"`));
    const panel = dom.slice(dom.indexOf('id="details-body"'), dom.indexOf('id="states"'));
    assert.ok(panel.includes(`"value": "${asText(XSS)}"`), 'the response JSON is shown as text');
    assert.ok(panel.includes('cannot be placed after the prefix'));
  });

  test('a value holding markup appears as text and creates no element', async () => {
    const dom = await dumpDom(root, violationFile);
    assert.doesNotMatch(dom, /<img/i, 'no <img> element');
    assert.doesNotMatch(dom, /onerror=alert\(1\)>/, 'the payload never appears unescaped');
    assert.ok(dom.includes(asText(`get k → ${XSS.slice(0, 17)}…`)), 'the bar label shows the value as text');
    assert.ok(dom.includes(`<title>Run ${asText(XSS)}</title>`));
  });

  test('violation screenshot', async () => {
    const png = path.join(artifacts, 'report-violation.png');
    rmSync(png, { force: true });
    await screenshot(root, violationFile, png);
    const bytes = readFileSync(png);
    assert.ok(statSync(png).size > 1000, 'a non-empty PNG');
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  });

  test(`a linearizable history over ${MAX_TIMELINE_OPERATIONS} operations renders a window with step numbers`, async () => {
    const count = MAX_TIMELINE_OPERATIONS + 1000;
    const { history, report } = bigLinearizable(count);
    const file = path.join(root, 'big.html');
    writeFileSync(file, renderHtmlReport(history, report));
    const dom = await dumpDom(root, file);
    assert.match(openingTag(dom, 'data-ready="true"'), /data-verdict="linearizable"/);
    assert.equal(dom.match(/<div class="op [^"]*" data-op="/g)?.length, MAX_TIMELINE_OPERATIONS);
    assert.match(dom, /id="window-note">The history has 6,000 operations; the timeline shows the first 5,000 by call time/);
    assert.match(dom, /data-op="4999"[^>]*><i class="step">5000<\/i>/);
    assert.doesNotMatch(dom, /data-op="5000"/);
    assert.match(dom, /<div class="lane" data-client="0">/);
    assert.match(dom, /<div class="lane" data-client="1">/);
    assert.match(dom, /class="verdict verdict-linearizable"/);
    await screenshot(root, file, path.join(artifacts, 'report-linearizable.png'));
  });

  test('a long history with a violation draws the window around the unplaceable operation', async () => {
    const { history } = bigLinearizable(8000);
    const bad = 6000;
    const report: CheckReport = {
      verdict: 'violation',
      linearizability: {
        verdict: 'violation',
        operations: history.operations.length,
        violation: { prefix: history.operations.slice(0, bad).map((_, i) => i), unplaceable: [bad], states: [], reason: 'the read returned a value no write produced' },
      },
      watch: { checked: 0, violations: [] },
      elapsedMs: 900,
    };
    const file = path.join(root, 'big-violation.html');
    writeFileSync(file, renderHtmlReport(history, report));
    const dom = await dumpDom(root, file);
    assert.match(openingTag(dom, 'data-ready="true"'), /data-verdict="violation"/);
    assert.equal(dom.match(/<div class="op [^"]*" data-op="/g)?.length, MAX_TIMELINE_OPERATIONS);
    assert.match(dom, /id="window-note">The history has 8,000 operations; the timeline shows 5,000 around the violation/);
    assert.ok(classesOf(openingTag(dom, `data-op="${bad}"`)).includes('unplaceable'));
    assert.match(openingTag(dom, 'id="details"'), new RegExp(`data-showing="${bad}"`));
    assert.doesNotMatch(dom, /data-op="2999"/);
    assert.match(dom, /data-op="3000"[^>]*><i class="step">3001<\/i>/);
    await screenshot(root, file, path.join(artifacts, 'report-violation-large.png'));
  });

  test('only the clients with an operation in view have a lane; the "all clients" box shows the others', async () => {
    // Two clients busy all along; twenty short-lived ones (each unknown outcome retires a client id) only
    // at the start. The page opens zoomed in on a violation near the end, where only the busy two act.
    const operations: Operation[] = [];
    for (let c = 0; c < 20; c++) {
      for (let k = 0; k < 3; k++) {
        const call = (c * 3 + k) * ms;
        operations.push({ client: 10 + c, call, return: call + ms / 2, request: { type: 'range', key: 'k' }, response: { revision: 1, kvs: [] } });
      }
    }
    for (let i = 0; i < 4000; i++) {
      const call = 60 * ms + i * ms;
      operations.push({ client: i % 2, call, return: call + ms / 2, request: { type: 'range', key: 'k' }, response: { revision: 1, kvs: [] } });
    }
    const bad = operations.length - 5;
    const report: CheckReport = {
      verdict: 'violation',
      linearizability: { verdict: 'violation', operations: operations.length, violation: { prefix: [0], unplaceable: [bad], states: [], reason: 'no state fits' } },
      watch: { checked: 0, violations: [] },
      elapsedMs: 1,
    };
    const file = path.join(root, 'lanes.html');
    const page = renderHtmlReport({ meta: undefined, operations, watches: [] }, report);
    // Without the script every lane is there.
    assert.equal(page.match(/<div class="lane" data-client="/g)?.length, 22);
    writeFileSync(file, page);
    const dom = await dumpDom(root, file);
    assert.match(openingTag(dom, 'data-ready="true"'), /data-verdict="violation"/);
    assert.match(openingTag(dom, 'id="details"'), new RegExp(`data-showing="${bad}"`));
    assert.equal(openingTag(dom, 'data-client="0"'), '<div class="lane" data-client="0">');
    assert.equal(openingTag(dom, 'data-client="1"'), '<div class="lane" data-client="1">');
    for (let c = 10; c < 30; c++) assert.match(openingTag(dom, `data-client="${c}"`), /\bhidden\b/, `client ${c} is idle in view`);
    // The page still holds their operations (the box brings the lanes back).
    assert.match(dom, /data-op="0"/);
    assert.match(dom, /<input type="checkbox" id="all-lanes">/);
  });
});
