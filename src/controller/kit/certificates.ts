/**
 * X.509 material the operator makes itself: a self-signed serving certificate for its metrics endpoint
 * (when no Secret gives one) and a CA with one serving certificate for an EtcdCluster's fault agents.
 * Node can parse and verify certificates but not create them, and the operator image has no openssl:
 * @peculiar/x509 builds them on WebCrypto (ECDSA P-256). It needs a Reflect metadata polyfill (its
 * dependency tsyringe checks for one at load), imported first here.
 */
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** PEM text: a certificate (chain) and its private key (PKCS #8). */
export interface ServingCertificate {
  cert: string;
  key: string;
}

/** A serving certificate and the CA certificate that signed it (the CA's key is not kept). */
export interface CertificateAuthorityBundle extends ServingCertificate {
  ca: string;
}

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const dayMs = 24 * 60 * 60 * 1000;
/** notBefore an hour back: a node whose clock is a little behind still accepts a fresh certificate. */
const clockSkewMs = 60 * 60 * 1000;

export class CertificateRequestError extends Error {
  override name = 'CertificateRequestError';
}

function serialNumber(): string {
  // A positive 128-bit serial (the top bit clear: DER integers are signed).
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function subjectAltNames(hosts: readonly string[]): x509.SubjectAlternativeNameExtension {
  if (hosts.length === 0) throw new CertificateRequestError('a serving certificate needs at least one host name or IP address');
  return new x509.SubjectAlternativeNameExtension(hosts.map((host) => (isIP(host) === 0 ? { type: 'dns' as const, value: host } : { type: 'ip' as const, value: host })));
}

async function keyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

function validity(days: number, now: Date): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now.getTime() - clockSkewMs), notAfter: new Date(now.getTime() + days * dayMs) };
}

const servingExtensions = (hosts: readonly string[]): x509.Extension[] => [
  new x509.BasicConstraintsExtension(false, undefined, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  subjectAltNames(hosts),
];

/** A self-signed serving certificate for `hosts` (DNS names or IP addresses), valid `days` days. */
export async function selfSignedCertificate(commonName: string, hosts: readonly string[], days = 365, now = new Date()): Promise<ServingCertificate> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${commonName}`,
    ...validity(days, now),
    keys,
    signingAlgorithm: algorithm,
    extensions: servingExtensions(hosts),
  });
  return { cert: cert.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

/**
 * A new CA and one serving certificate it signs for `hosts` (wildcards such as `*.peers.ns.svc.cluster.local`
 * allowed). The CA can sign nothing else afterwards: its private key is dropped here.
 */
export async function certificateAuthorityBundle(caName: string, hosts: readonly string[], days = 3650, now = new Date()): Promise<CertificateAuthorityBundle> {
  const caKeys = await keyPair();
  const period = validity(days, now);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${caName}`,
    ...period,
    keys: caKeys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = await keyPair();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${hosts[0] ?? caName}`,
    issuer: ca.subject,
    ...period,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: algorithm,
    extensions: [...servingExtensions(hosts), await x509.AuthorityKeyIdentifierExtension.create(ca, false)],
  });
  return { ca: ca.toString('pem'), cert: leaf.toString('pem'), key: await privateKeyPem(leafKeys.privateKey) };
}
