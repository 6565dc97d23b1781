import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseOperatorArgs } from '../../src/commands/operator.ts';
import { UsageError } from '../../src/commands/usage.ts';

describe('etcd-robustness operator arguments', () => {
  test('defaults: kubernetes runtime, all namespaces, leader election on, ports 8080/8081 on loopback (plain HTTP there), JSON logs', () => {
    const args = parseOperatorArgs([], { POD_NAMESPACE: 'ops' });
    assert.ok(args !== 'help');
    assert.equal(args.runtime, 'kubernetes');
    assert.deepEqual(args.namespaces, []);
    assert.equal(args.leaderElect, true);
    assert.equal(args.leaderElectionNamespace, 'ops');
    assert.equal(args.leaderElectionId, 'etcd-robustness-operator');
    assert.equal(args.leaseDurationMs, 15_000);
    assert.equal(args.metricsPort, 8080);
    assert.equal(args.healthPort, 8081);
    assert.equal(args.bindAddress, '127.0.0.1');
    assert.equal(args.metricsSecure, false);
    assert.equal(args.logFormat, 'json');
    assert.equal(args.reportDir, undefined);
  });

  test('the flags the Helm chart passes are understood', () => {
    const args = parseOperatorArgs(
      ['--runtime=local', '--namespaces=a, b,', '--leader-elect=false', '--leader-election-namespace=x', '--lease-duration=4s', '--metrics-port=0', '--health-port=9', '--report-dir=/reports', '--log-format=text'],
      {},
    );
    assert.ok(args !== 'help');
    assert.equal(args.runtime, 'local');
    assert.deepEqual(args.namespaces, ['a', 'b']);
    assert.equal(args.leaderElect, false);
    assert.equal(args.leaderElectionNamespace, 'x');
    assert.equal(args.leaseDurationMs, 4000);
    assert.equal(args.metricsPort, 0);
    assert.equal(args.reportDir, '/reports');
    assert.equal(args.logFormat, 'text');
    assert.equal(parseOperatorArgs(['--help']), 'help');
  });

  test('any address but loopback serves metrics securely; plain HTTP there is refused', () => {
    const chart = parseOperatorArgs(['--bind-address=0.0.0.0', '--metrics-port=8443', '--health-port=8081', '--metrics-cert-dir=/certs'], {});
    assert.ok(chart !== 'help');
    assert.equal(chart.metricsSecure, true);
    assert.equal(chart.metricsCertDir, '/certs');
    for (const host of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', 'localhost']) {
      const local = parseOperatorArgs([`--bind-address=${host}`], {});
      assert.ok(local !== 'help');
      assert.equal(local.metricsSecure, false, host);
      const secure = parseOperatorArgs([`--bind-address=${host}`, '--metrics-secure=true'], {});
      assert.ok(secure !== 'help');
      assert.equal(secure.metricsSecure, true, host);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.7', 'operator.example']) {
      assert.throws(
        () => parseOperatorArgs([`--bind-address=${host}`, '--metrics-secure=false'], {}),
        (error: unknown) => error instanceof UsageError && /plain HTTP without authentication is served on loopback only/.test(error.message),
        host,
      );
    }
  });

  test("--member-network-policy: the operator Pods' labels and namespace", () => {
    const args = parseOperatorArgs(['--member-network-policy=app.kubernetes.io/name=ero, app.kubernetes.io/instance=r1'], { POD_NAMESPACE: 'ops' });
    assert.ok(args !== 'help');
    assert.deepEqual(args.memberNetworkPolicy, { namespace: 'ops', podLabels: { 'app.kubernetes.io/name': 'ero', 'app.kubernetes.io/instance': 'r1' } });
    const none = parseOperatorArgs([], { POD_NAMESPACE: 'ops' });
    assert.ok(none !== 'help');
    assert.equal(none.memberNetworkPolicy, undefined);
    assert.throws(() => parseOperatorArgs(['--member-network-policy=a=b'], {}), /needs POD_NAMESPACE/);
    assert.throws(() => parseOperatorArgs(['--member-network-policy=a'], { POD_NAMESPACE: 'ops' }), /"a" is not a label KEY=VALUE/);
    assert.throws(() => parseOperatorArgs(['--member-network-policy=,'], { POD_NAMESPACE: 'ops' }), /name at least one label/);
  });

  test('bad values are usage errors naming the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--runtime=docker'], /--runtime: "docker" is not kubernetes or local/],
      [['--metrics-port=http'], /--metrics-port: "http" is not a port number/],
      [['--health-port=70000'], /--health-port: "70000" is not a port number/],
      [['--lease-duration=1s'], /--lease-duration: must be at least 2s/],
      [['--lease-duration=soon'], /--lease-duration:/],
      [['--leader-elect=maybe'], /--leader-elect: "maybe" is not true or false/],
      [['--log-format=xml'], /--log-format: "xml" is not json or text/],
      [['--metrics-secure=yes'], /--metrics-secure: "yes" is not true or false/],
      [['--bind-address=0.0.0.0', '--metrics-port=8443', '--health-port=8443'], /--health-port: must differ from --metrics-port \(8443\)/],
      [['--metrics-cert-dir=/c'], /--metrics-cert-dir: needs --metrics-secure/],
      [['extra'], /unexpected argument "extra"/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parseOperatorArgs(argv, {}), (error: unknown) => error instanceof UsageError && message.test(error.message), argv.join(' '));
    }
  });
});
