// The HTML report's markup: escaping by default (html`...`) and which client lanes the timeline draws,
// checked on the rendered string (test/integration/report-html.test.ts loads pages in Chromium).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CheckReport } from '../../src/checker/index.ts';
import type { History, Operation } from '../../src/domain/index.ts';
import { escapeHtml, html, MAX_TIMELINE_OPERATIONS, raw, renderHtmlReport } from '../../src/report/index.ts';
import { timelineLanes } from '../../src/report/timeline.ts';

const ms = 1_000_000;
const SCRIPT = '<script>alert("x")</script>';

function linearizable(operations: Operation[]): CheckReport {
  return {
    verdict: 'linearizable',
    linearizability: { verdict: 'linearizable', operations: operations.length, linearization: operations.map((_, i) => i) },
    watch: { checked: 0, violations: [] },
    elapsedMs: 1,
  };
}

/** The client ids of the lanes drawn, in order. */
function laneClients(page: string): number[] {
  return [...page.matchAll(/<div class="lane" data-client="(\d+)">/g)].map((m) => Number(m[1]));
}

describe('html`...`: escapes by default', () => {
  test('interpolated text is escaped, in text and in attributes; markup passes only as html`...` or raw(...)', () => {
    const value = `"it's" <b>&`;
    assert.equal(html`<p title="${value}">${value}</p>`.text, '<p title="&quot;it&#39;s&quot; &lt;b&gt;&amp;">&quot;it&#39;s&quot; &lt;b&gt;&amp;</p>');
    assert.equal(html`<div>${html`<i>${SCRIPT}</i>`}</div>`.text, `<div><i>${escapeHtml(SCRIPT)}</i></div>`);
    assert.equal(html`<div>${raw('<hr>')}</div>`.text, '<div><hr></div>');
  });

  test('numbers print, nothing (false, null, undefined) prints nothing, arrays concatenate each item escaped', () => {
    assert.equal(html`${3}|${false}|${null}|${undefined}|${['<', html`<br>`, 2]}`.text, '3||||&lt;<br>2');
  });

  test('an operation value and a key holding <script> appear escaped in the page, never as markup', () => {
    const operations: Operation[] = [
      { client: 0, call: 0, return: 5 * ms, request: { type: 'put', key: SCRIPT, value: SCRIPT }, response: { revision: 2 } },
      { client: 1, call: 1 * ms, return: 6 * ms, request: { type: 'range', key: SCRIPT }, response: { revision: 2, kvs: [{ key: SCRIPT, value: SCRIPT }] } },
    ];
    const history: History = { meta: { kind: 'meta', cluster: SCRIPT, initialRevision: 1 }, operations, watches: [] };
    const page = renderHtmlReport(history, linearizable(operations), { title: SCRIPT });
    // The page's own two scripts (its data and its code) are the only <script> elements.
    assert.equal(page.split('<script').length - 1, 2);
    assert.ok(!page.includes('<script>alert'));
    assert.ok(page.includes(`<title>${escapeHtml(SCRIPT)}</title>`));
    assert.ok(page.includes(`<h1>${escapeHtml(SCRIPT)}</h1>`));
    assert.ok(page.includes(`<b>cluster</b> ${escapeHtml(SCRIPT)}`));
    // The bar's label (truncated to 18 characters per part) and its tooltip.
    assert.match(page, /<span class="label">put &lt;script&gt;alert\(&quot;x&quot;…=&lt;script&gt;alert\(&quot;x&quot;…<\/span>/);
    assert.match(page, /title="#0 put &lt;script&gt;alert/);
    // In the script's JSON data, < and > are \u escapes.
    assert.ok(page.includes('\\u003cscript\\u003ealert'));
  });
});

describe('timeline lanes', () => {
  test('one lane per client with a drawn operation, by client id, with its operations in the given order', () => {
    const op = (client: number, call: number): Operation => ({ client, call, return: call + 1, request: { type: 'range', key: 'k' }, response: { revision: 1, kvs: [] } });
    const ops = [op(5, 0), op(2, 1), op(9, 2), op(5, 3), op(2, 4), op(7, 5)];
    assert.deepEqual(timelineLanes(ops, [4, 0, 1, 3]), [
      [2, [4, 1]],
      [5, [0, 3]],
    ]);
    assert.deepEqual(timelineLanes(ops, []), []);
  });

  test('a long history shown in a window: clients retired before the window (unknown outcomes) get no lane', () => {
    // Four clients throughout; every unknown outcome retires its client id and the next one takes over,
    // as the traffic does. The retired ids' operations all come before the timeline's window.
    const operations: Operation[] = [];
    const retired = 40;
    let time = 0;
    for (let c = 0; c < retired; c++) {
      operations.push({ client: 100 + c, call: time, return: time + ms, request: { type: 'put', key: 'k', value: `r${c}` }, response: { revision: operations.length + 2 } });
      operations.push({ client: 100 + c, call: time + 2 * ms, return: null, request: { type: 'put', key: 'k', value: `u${c}` }, error: 'timeout' });
      time += 3 * ms;
    }
    for (let i = 0; operations.length < MAX_TIMELINE_OPERATIONS + 2 * retired + 100; i++) {
      operations.push({ client: i % 4, call: time, return: time + ms / 2, request: { type: 'range', key: 'k' }, response: { revision: 2, kvs: [] } });
      time += ms;
    }
    const last = operations.length - 1;
    const report: CheckReport = {
      verdict: 'violation',
      linearizability: { verdict: 'violation', operations: operations.length, violation: { prefix: [0], unplaceable: [last], states: [], reason: 'no state fits' } },
      watch: { checked: 0, violations: [] },
      elapsedMs: 1,
    };
    const page = renderHtmlReport({ meta: undefined, operations, watches: [] }, report);
    assert.match(page, /id="window-note">The history has 5,180 operations; the timeline shows 5,000 around the violation/);
    assert.deepEqual(laneClients(page), [0, 1, 2, 3]);
    // The stats still count every client of the history.
    assert.match(page, /<div class="stat" data-stat="clients"><div class="value">44<\/div>/);
  });
});
