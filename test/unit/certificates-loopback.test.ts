// The operator's own X.509 material (src/controller/kit/certificates.ts: a self-signed metrics serving
// certificate, a per-cluster CA for the fault agents) checked with Node's parser, and the loopback test
// (src/loopback.ts) that decides where plain HTTP may be served.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { certificateAuthorityBundle, CertificateRequestError, selfSignedCertificate } from '../../src/controller/kit/certificates.ts';
import { isLoopback } from '../../src/loopback.ts';

describe('certificates', () => {
  test('a self-signed serving certificate names its hosts (DNS and IP), is valid now and matches its key', async () => {
    const now = new Date('2026-12-06T08:00:00Z');
    const { cert, key } = await selfSignedCertificate('metrics', ['operator-0', '10.1.2.3', 'localhost'], 365, now);
    const x509 = new X509Certificate(cert);
    assert.equal(x509.subjectAltName, 'DNS:operator-0, IP Address:10.1.2.3, DNS:localhost');
    assert.equal(x509.ca, false);
    assert.ok(x509.checkPrivateKey(createPrivateKey(key)));
    assert.ok(x509.verify(x509.publicKey), 'self-signed');
    assert.ok(new Date(x509.validFrom) < now && new Date(x509.validTo) > new Date(now.getTime() + 364 * 86_400_000));
    assert.deepEqual(x509.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');
  });

  test("a CA bundle: the CA signed the serving certificate, which covers every member's name and nothing else", async () => {
    const bundle = await certificateAuthorityBundle('agents of db/main', ['*.main-peers.db.svc.cluster.local']);
    const ca = new X509Certificate(bundle.ca);
    const leaf = new X509Certificate(bundle.cert);
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.ok(leaf.checkPrivateKey(createPrivateKey(bundle.key)));
    assert.notEqual(leaf.checkHost('main-4.main-peers.db.svc.cluster.local'), undefined);
    assert.equal(leaf.checkHost('main-peers.db.svc.cluster.local'), undefined);
    assert.equal(leaf.checkHost('x.other-peers.db.svc.cluster.local'), undefined);
    // Each bundle is a new CA: one cluster's CA does not vouch for another's agents.
    const other = await certificateAuthorityBundle('agents of db/other', ['*.main-peers.db.svc.cluster.local']);
    assert.equal(leaf.checkIssued(new X509Certificate(other.ca)), false);
  });

  test('no hosts is a CertificateRequestError', async () => {
    await assert.rejects(selfSignedCertificate('x', []), CertificateRequestError);
  });
});

describe('isLoopback', () => {
  test('localhost, 127.0.0.0/8 and ::1 (bracketed or IPv4-mapped) only', () => {
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.255.0.9', '::1', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopback(host), true, host);
    for (const host of ['', '0.0.0.0', '::', '[::]', '10.0.0.1', '128.0.0.1', '127.0.0.1.example.com', 'localhost.evil', '::2', '::ffff:10.0.0.1']) {
      assert.equal(isLoopback(host), false, host);
    }
  });

  test('property: no IPv4 address outside 127.0.0.0/8 is loopback', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => isLoopback(ip) === ip.startsWith('127.')),
    );
  });
});
