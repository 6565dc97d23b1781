import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseHistory } from '../../src/checker/parse.ts';
import { serializeFaultLine, serializeHistory } from '../../src/checker/serialize.ts';
import type { FaultEvent, History } from '../../src/domain/index.ts';
import { historyProblem } from '../helpers/histories.ts';

const put = '{"client": 1, "call": 10, "return": 20, "request": {"type": "put", "key": "k", "value": "v"}, "response": {"revision": 2}}';

describe('history fault lines', () => {
  test('fault lines are read in order, with optional params and detail, beside operations', () => {
    const text = [
      '{"kind": "meta", "seed": 1}',
      '{"kind": "fault", "id": 1, "time": 5, "phase": "inject", "fault": "delay", "targets": ["m1"], "params": {"delayMs": 75, "mode": "x"}}',
      put,
      '{"kind": "fault", "id": 1, "time": 30, "phase": "heal", "fault": "delay", "targets": ["m1"], "detail": "rules removed"}',
      '{"kind": "fault", "id": 2, "time": 40, "phase": "failed", "fault": "kill", "targets": [], "detail": "no agent"}',
    ].join('\n');
    const history = parseHistory(text);
    assert.equal(history.operations.length, 1);
    assert.deepEqual(history.faults, [
      { kind: 'fault', id: 1, time: 5, phase: 'inject', fault: 'delay', targets: ['m1'], params: { delayMs: 75, mode: 'x' } },
      { kind: 'fault', id: 1, time: 30, phase: 'heal', fault: 'delay', targets: ['m1'], detail: 'rules removed' },
      { kind: 'fault', id: 2, time: 40, phase: 'failed', fault: 'kill', targets: [], detail: 'no agent' },
    ]);
  });

  test('a history without fault lines has no faults field', () => {
    assert.equal('faults' in parseHistory(put), false);
  });

  test('serializeHistory writes them after the rest and parseHistory reads them back', () => {
    const faults: FaultEvent[] = [
      { kind: 'fault', id: 3, time: 100, phase: 'inject', fault: 'raftBeforeSavePanic', targets: ['etcd-0'] },
      { kind: 'fault', id: 3, time: 900, phase: 'verified', fault: 'raftBeforeSavePanic', targets: ['etcd-0'], detail: 'panicked and restarted' },
    ];
    const history: History = { meta: undefined, operations: parseHistory(put).operations, watches: [], faults };
    const text = serializeHistory(history);
    assert.deepEqual(text.trim().split('\n').slice(1), faults.map(serializeFaultLine));
    assert.deepEqual(parseHistory(text), history);
  });

  test('serializeFaultLine puts kind first whatever the field order', () => {
    const event = { id: 1, time: 2, phase: 'inject', fault: 'kill', targets: ['a'], kind: 'fault' } as const satisfies FaultEvent;
    assert.equal(serializeFaultLine(event), '{"kind":"fault","id":1,"time":2,"phase":"inject","fault":"kill","targets":["a"]}');
  });

  test('malformed fault lines are rejected as FILE:LINE: problem', () => {
    const line = (fields: Record<string, unknown>): string =>
      JSON.stringify({ kind: 'fault', id: 1, time: 5, phase: 'inject', fault: 'kill', targets: ['m1'], ...fields });
    assert.equal(historyProblem(line({ phase: 'start' })), 'h.jsonl:1: phase must be one of inject, verified, heal, failed; got "start"');
    assert.match(historyProblem(line({ fault: 'explode' })), /^h\.jsonl:1: fault must be one of kill, crash, pause, .*; got "explode"$/);
    assert.equal(historyProblem(line({ time: -1 })), 'h.jsonl:1: time must be an integer >= 0, got -1');
    assert.equal(historyProblem(line({ id: 'a' })), 'h.jsonl:1: id must be an integer >= 0, got "a"');
    assert.equal(historyProblem(line({ targets: 'm1' })), 'h.jsonl:1: targets must be an array');
    assert.equal(historyProblem(line({ targets: [1] })), 'h.jsonl:1: targets[0] must be a string');
    assert.equal(historyProblem(line({ params: { delayMs: true } })), 'h.jsonl:1: params.delayMs must be a number or a string');
    assert.equal(historyProblem(line({ detail: 5 })), 'h.jsonl:1: detail must be a string');
    assert.equal(historyProblem(`${put}\n${line({})}\n${line({ fault: 'pause', phase: 'heal' })}`), 'h.jsonl:3: fault 1 is kill on an earlier line, not pause');
    assert.equal(historyProblem('{"kind": "chaos"}'), 'h.jsonl:1: unknown kind "chaos" (expected no kind, "invoke", "meta", "watch" or "fault")');
  });
});
