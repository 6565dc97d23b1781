/**
 * Random histories for property tests: requests applied in sequence to the simulator (so a valid
 * linearization exists by construction), then spread over concurrent clients whose call/return
 * intervals contain each operation's linearization point.
 */
import fc from 'fast-check';
import type { EtcdRequest, History, Operation } from '../../src/domain/index.ts';
import { EtcdSimulator } from './etcd-simulator.ts';

const keys = ['/k/a', '/k/b', '/k/c'];

type RequestTemplate =
  | { kind: 'get'; key: number }
  | { kind: 'list' }
  | { kind: 'put'; key: number }
  | { kind: 'delete'; key: number }
  | { kind: 'casValue'; key: number }
  | { kind: 'casMod'; key: number; delta: number }
  | { kind: 'leaseGrant' }
  | { kind: 'putWithLease'; key: number }
  | { kind: 'leaseRevoke' };

const template: fc.Arbitrary<RequestTemplate> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('list' as const) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('casValue' as const), key: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('casMod' as const), key: fc.nat(2), delta: fc.integer({ min: -1, max: 0 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leaseGrant' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('putWithLease' as const), key: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leaseRevoke' as const) }) },
);

export interface GeneratedHistory {
  history: History;
  /** Indices of operations whose response the test may corrupt (known reads and writes). */
  corruptible: number[];
}

export interface Shape {
  templates: RequestTemplate[];
  /** Per operation: [client choice, call jitter, return jitter, outcome: 0 known, 1 unknown applied, 2 unknown never applied]. */
  timing: [number, number, number, number][];
  withRevisions: boolean;
}

export const shapeArbitrary: fc.Arbitrary<Shape> = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    templates: fc.array(template, { minLength: n, maxLength: n }),
    timing: fc.array(fc.tuple(fc.nat(5), fc.nat(25), fc.nat(25), fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) })), {
      minLength: n,
      maxLength: n,
    }),
    withRevisions: fc.boolean(),
  }),
);

/**
 * The same generator with bigger histories and a chosen share of unknown outcomes (the checker's stress
 * sweep: bench/checker.ts --sweep-ops/--sweep-unknown, and checker-search-stress.test.ts): `ops`
 * operations each, each one's outcome unknown with probability about `unknownRate` (half of those
 * applied, half never; a read never has an unknown outcome, while fast-check's bias towards small
 * integers raises the rate: the measured share of unknown operations is near the rate, 28% at 0.25 and
 * 30% at 0.3 over the sweep's first 20 draws), revisions shown or not as `withRevisions` says (drawn
 * when undefined).
 */
export function sizedShapeArbitrary(options: { ops: number; unknownRate: number; withRevisions?: boolean }): fc.Arbitrary<Shape> {
  const { ops, unknownRate } = options;
  const outcome = fc.integer({ min: 0, max: 9999 }).map((x) => (x >= unknownRate * 10_000 ? 0 : x % 2 === 0 ? 1 : 2));
  return fc.record({
    templates: fc.array(template, { minLength: ops, maxLength: ops }),
    timing: fc.array(fc.tuple(fc.nat(5), fc.nat(25), fc.nat(25), outcome), { minLength: ops, maxLength: ops }),
    withRevisions: options.withRevisions === undefined ? fc.boolean() : fc.constant(options.withRevisions),
  });
}

function stripRevisions(op: Operation): Operation {
  if (!op.response) return op;
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (typeof value !== 'object' || value === null) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'revision' || k === 'modRevision' || k === 'createRevision' || k === 'version') continue;
      out[k] = strip(v);
    }
    return out;
  };
  return { ...op, response: strip(op.response) as Operation['response'] };
}

export function buildHistory(shape: Shape): GeneratedHistory {
  const sim = new EtcdSimulator();
  let counter = 0;
  let leaseCounter = 0;
  const recentValue = new Map<string, string>();
  const operations: Operation[] = [];
  const corruptible: number[] = [];
  const busyUntil = new Map<number, number>(); // client -> last return (Infinity when its stream ended)
  let nextClient = 100;

  shape.templates.forEach((t, i) => {
    const [clientChoice, callJitter, returnJitter, outcome] = shape.timing[i]!;
    const key = 'key' in t ? keys[t.key]! : keys[0]!;
    let request: EtcdRequest;
    switch (t.kind) {
      case 'get':
        request = { type: 'range', key };
        break;
      case 'list':
        request = { type: 'range', key: '/k/', end: '/k0' };
        break;
      case 'put':
        request = { type: 'put', key, value: `v${++counter}` };
        break;
      case 'delete':
        request = { type: 'delete', key };
        break;
      case 'casValue':
        request = {
          type: 'txn',
          compare: [{ key, target: 'value', result: '=', value: recentValue.get(key) ?? 'none' }],
          success: [{ type: 'put', key, value: `v${++counter}` }],
          failure: [{ type: 'range', key }],
        };
        break;
      case 'casMod':
        request = {
          type: 'txn',
          compare: [{ key, target: 'mod', result: '=', value: Math.max(0, sim.revision + t.delta) }],
          success: [{ type: 'put', key, value: `v${++counter}` }],
          failure: [{ type: 'range', key }],
        };
        break;
      case 'leaseGrant':
        request = { type: 'leaseGrant', id: String(++leaseCounter), ttl: 60 };
        break;
      case 'putWithLease':
        if (leaseCounter === 0 || !sim.hasLease(String(leaseCounter))) request = { type: 'put', key, value: `v${++counter}` };
        else request = { type: 'put', key, value: `v${++counter}`, lease: String(leaseCounter) };
        break;
      case 'leaseRevoke':
        if (leaseCounter === 0 || !sim.hasLease(String(leaseCounter))) request = { type: 'range', key };
        else request = { type: 'leaseRevoke', id: String(leaseCounter) };
        break;
    }
    const point = (i + 1) * 100;
    const neverApplied = outcome === 2 && request.type !== 'range';
    const response = neverApplied ? undefined : sim.apply(request);
    if (request.type === 'put') recentValue.set(request.key, request.value);
    if (request.type === 'txn' && response && 'succeeded' in response && response.succeeded) {
      const p = request.success[0];
      if (p?.type === 'put') recentValue.set(p.key, p.value);
    }
    const call = point - 1 - callJitter * 3;
    // Pick a client free at `call`, or start a new stream.
    const candidates = [...busyUntil.entries()].filter(([, until]) => until < call).map(([c]) => c);
    const client = candidates.length > 0 ? candidates[clientChoice % candidates.length]! : nextClient++;
    const unknown = outcome !== 0 && request.type !== 'range';
    const ret = unknown ? null : point + 1 + returnJitter * 3;
    busyUntil.set(client, ret ?? Infinity);
    const op: Operation = { client, call, return: ret, request };
    if (!unknown && response) {
      op.response = response;
      corruptible.push(operations.length);
    }
    operations.push(op);
  });
  const history: History = {
    meta: { kind: 'meta', mode: 'exclusive' },
    operations: shape.withRevisions ? operations : operations.map(stripRevisions),
    watches: [],
  };
  return { history, corruptible };
}

/** A change to one response that no linearization can explain. */
export function corrupt(history: History, index: number, how: number): History | undefined {
  const op = history.operations[index]!;
  const response = structuredClone(op.response)!;
  const writesSeen = history.operations.length + 10;
  if ('kvs' in response && response.kvs.length > 0 && how % 2 === 0) {
    response.kvs[0]!.value = 'never-written';
  } else if ('revision' in response && response.revision !== undefined) {
    response.revision = response.revision + writesSeen;
  } else if ('kvs' in response) {
    response.kvs.push({ key: '/k/never', value: 'never-written' });
  } else {
    return undefined;
  }
  const operations = history.operations.slice();
  operations[index] = { ...op, response };
  return { ...history, operations };
}
