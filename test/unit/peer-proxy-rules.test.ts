// The peer proxy's pure rule logic: which rule applies to which direction of which connection.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LinkRule } from '../../src/domain/faults.ts';
import {
  chunkDelayMs,
  connectionEffects,
  isLossy,
  linkEffect,
  memberIdHex,
  noEffect,
  serverFromHeader,
} from '../../src/faults/peer-proxy-rules.ts';

const none = { ...noEffect };

describe('connectionEffects (proxy in front of m2)', () => {
  test('no rules: nothing applies', () => {
    assert.deepEqual(connectionEffects('m2', 'm1', []), { upstream: none, downstream: none });
  });

  test('a rule to this member applies upstream on connections the rule\'s source opened', () => {
    const rules: LinkRule[] = [{ from: 'm1', to: 'm2', action: 'blackhole' }];
    assert.deepEqual(connectionEffects('m2', 'm1', rules), { upstream: { ...none, blackhole: true }, downstream: none });
    // m3's connections are not on that link.
    assert.deepEqual(connectionEffects('m2', 'm3', rules), { upstream: none, downstream: none });
  });

  test('a rule from this member applies downstream on connections the rule\'s destination opened', () => {
    const rules: LinkRule[] = [{ from: 'm2', to: 'm3', action: 'delay', delayMs: 100, jitterMs: 20 }];
    assert.deepEqual(connectionEffects('m2', 'm3', rules), { upstream: none, downstream: { ...none, delayMs: 100, jitterMs: 20 } });
    assert.deepEqual(connectionEffects('m2', 'm1', rules), { upstream: none, downstream: none });
  });

  test('rules about other links are ignored', () => {
    const rules: LinkRule[] = [
      { from: 'm1', to: 'm3', action: 'blackhole' },
      { from: 'm3', to: 'm1', action: 'drop', dropPercent: 50 },
    ];
    for (const remote of ['m1', 'm3']) assert.deepEqual(connectionEffects('m2', remote, rules), { upstream: none, downstream: none });
  });

  test('both directions of one pair: isolating m1 from m2', () => {
    const rules: LinkRule[] = [
      { from: 'm1', to: 'm2', action: 'blackhole' },
      { from: 'm2', to: 'm1', action: 'blackhole' },
    ];
    const effects = connectionEffects('m2', 'm1', rules);
    assert.equal(effects.upstream.blackhole, true);
    assert.equal(effects.downstream.blackhole, true);
  });

  test('unidentified connections and connections from the member itself get nothing', () => {
    const rules: LinkRule[] = [{ from: 'm1', to: 'm2', action: 'blackhole' }, { from: 'm2', to: 'm2', action: 'blackhole' }];
    assert.deepEqual(connectionEffects('m2', undefined, rules), { upstream: none, downstream: none });
    assert.deepEqual(connectionEffects('m2', 'm2', rules), { upstream: none, downstream: none });
  });
});

describe('linkEffect merges rules on one link', () => {
  test('blackhole wins, drops combine as independent losses, delays add up', () => {
    const rules: LinkRule[] = [
      { from: 'a', to: 'b', action: 'drop', dropPercent: 50 },
      { from: 'a', to: 'b', action: 'drop', dropPercent: 50 },
      { from: 'a', to: 'b', action: 'delay', delayMs: 100, jitterMs: 10 },
      { from: 'a', to: 'b', action: 'delay', delayMs: 50 },
    ];
    assert.deepEqual(linkEffect('a', 'b', rules), { blackhole: false, dropPercent: 75, delayMs: 150, jitterMs: 10 });
    assert.equal(linkEffect('a', 'b', [...rules, { from: 'a', to: 'b', action: 'blackhole' }]).blackhole, true);
  });

  test('out-of-range and missing parameters are clamped', () => {
    assert.equal(linkEffect('a', 'b', [{ from: 'a', to: 'b', action: 'drop', dropPercent: 250 }]).dropPercent, 100);
    assert.equal(linkEffect('a', 'b', [{ from: 'a', to: 'b', action: 'drop', dropPercent: -5 }]).dropPercent, 0);
    assert.equal(linkEffect('a', 'b', [{ from: 'a', to: 'b', action: 'drop' }]).dropPercent, 0);
    assert.deepEqual(linkEffect('a', 'b', [{ from: 'a', to: 'b', action: 'delay', delayMs: -10 }]), none);
  });

  test('isLossy: blackhole and drop lose bytes, delay does not', () => {
    assert.equal(isLossy({ ...none, blackhole: true }), true);
    assert.equal(isLossy({ ...none, dropPercent: 1 }), true);
    assert.equal(isLossy({ ...none, delayMs: 100 }), false);
    assert.equal(isLossy(none), false);
  });
});

describe('chunkDelayMs', () => {
  test('delay ± jitter, never negative', () => {
    const effect = { ...none, delayMs: 100, jitterMs: 20 };
    assert.equal(chunkDelayMs(effect, () => 0), 80);
    assert.equal(chunkDelayMs(effect, () => 0.5), 100);
    assert.ok(Math.abs(chunkDelayMs(effect, () => 0.999999) - 120) < 0.001);
    assert.equal(chunkDelayMs({ ...none, delayMs: 5, jitterMs: 20 }, () => 0), 0);
    assert.equal(chunkDelayMs(none, () => 0.3), 0);
  });
});

describe('member ids', () => {
  test('memberIdHex turns etcd3 decimal ids into the hex etcd prints (lowercase, no leading zeros)', () => {
    assert.equal(memberIdHex('10501334649042878790'), '91bc3c398fb3c146');
    assert.equal(memberIdHex('255'), 'ff');
    assert.equal(memberIdHex(255n), 'ff');
  });

  test('serverFromHeader reads X-Server-From from a request head, any case', () => {
    const head = ['GET /raft/stream/message/8e9e05c52164694d HTTP/1.1', 'Host: 127.0.0.1:2380', 'X-Server-From: 8e9e05c52164694d', 'X-Raft-To: 91bc3c398fb3c146'].join('\r\n');
    assert.equal(serverFromHeader(head), '8e9e05c52164694d');
    assert.equal(serverFromHeader(head.replace('X-Server-From', 'x-server-from')), '8e9e05c52164694d');
    assert.equal(serverFromHeader('POST /raft HTTP/1.1\r\nX-Server-From: 00AB'), 'ab');
    assert.equal(serverFromHeader('GET /version HTTP/1.1\r\nHost: x'), undefined);
    assert.equal(serverFromHeader('GET /version HTTP/1.1\r\nX-Server-From:   '), undefined);
  });
});
