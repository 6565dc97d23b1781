// The informer predicate a controller uses for objects whose status it writes itself: only changes beyond
// the status wake it (an EtcdCluster's member revisions move with every client write).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metadataChanged, type KubeObject } from '../../src/controller/kit/index.ts';

const base: KubeObject & { status?: unknown } = {
  metadata: { name: 'c1', namespace: 'ns', resourceVersion: '10', generation: 2, labels: { a: '1' }, annotations: { b: '2' }, finalizers: ['f'] },
  status: { members: [{ revision: 5 }] },
};
const withMetadata = (changes: Partial<NonNullable<KubeObject['metadata']>>, status: unknown = base.status): KubeObject => ({ ...base, metadata: { ...base.metadata, ...changes }, status } as KubeObject);

test('a status-only update (a new resourceVersion, another revision) does not count; spec, labels, annotations, finalizers and deletion do', () => {
  assert.equal(metadataChanged(base, withMetadata({ resourceVersion: '11' }, { members: [{ revision: 6 }] })), false);
  assert.equal(metadataChanged(base, withMetadata({ generation: 3 })), true, 'spec');
  assert.equal(metadataChanged(base, withMetadata({ labels: { a: '2' } })), true, 'labels');
  assert.equal(metadataChanged(base, withMetadata({ annotations: {} })), true, 'annotations');
  assert.equal(metadataChanged(base, withMetadata({ finalizers: [] })), true, 'finalizers');
  assert.equal(metadataChanged(base, withMetadata({ deletionTimestamp: '2026-12-07T00:00:00Z' })), true, 'deletion');
  assert.equal(metadataChanged({ metadata: { name: 'x' } }, { metadata: { name: 'x', labels: {} } }), true, 'labels appearing');
  assert.equal(metadataChanged({}, {}), false);
});
