/**
 * The node's certificates: one CA, and a certificate per identity the components present, signed with
 * the openssl CLI (Node's crypto makes keys but cannot issue certificates). Keys are P-256 (fast to make).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runOk } from './host.ts';

export interface CertPaths {
  cert: string;
  key: string;
}

export interface NodePki {
  ca: CertPaths;
  /** The API server's serving certificate. */
  apiserver: CertPaths;
  /** The API server's client certificate towards the kubelet (system:masters). */
  apiserverKubeletClient: CertPaths;
  kubeletServing: CertPaths;
  admin: CertPaths;
  kubelet: CertPaths;
  controllerManager: CertPaths;
  scheduler: CertPaths;
  kubeProxy: CertPaths;
  coredns: CertPaths;
  /** The service-account token signing key pair. */
  serviceAccount: { privateKey: string; publicKey: string };
}

interface CertRequest {
  file: string;
  commonName: string;
  organizations?: string[];
  usage: 'serverAuth' | 'clientAuth';
  ips?: string[];
  dnsNames?: string[];
}

function writeKey(file: string): void {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

/** An openssl config: the request's (empty) name section and the certificate's extensions. */
function opensslConfig(extensions: string[]): string {
  return ['[req]', 'distinguished_name = dn', '[dn]', '[ext]', ...extensions, ''].join('\n');
}

async function createCa(dir: string): Promise<CertPaths> {
  const paths = { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key') };
  writeKey(paths.key);
  const config = path.join(dir, 'ca.cnf');
  writeFileSync(config, opensslConfig(['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign,digitalSignature', 'subjectKeyIdentifier = hash']));
  await runOk('openssl', ['req', '-new', '-x509', '-key', paths.key, '-subj', '/CN=etcd-robustness-node-ca', '-days', '3650', '-config', config, '-extensions', 'ext', '-out', paths.cert]);
  return paths;
}

async function issue(dir: string, ca: CertPaths, request: CertRequest): Promise<CertPaths> {
  const paths = { cert: path.join(dir, `${request.file}.crt`), key: path.join(dir, `${request.file}.key`) };
  writeKey(paths.key);
  const alternativeNames = [...(request.ips ?? []).map((ip) => `IP:${ip}`), ...(request.dnsNames ?? []).map((name) => `DNS:${name}`)];
  const config = path.join(dir, `${request.file}.cnf`);
  writeFileSync(config, opensslConfig([
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage = ${request.usage}`,
    'authorityKeyIdentifier = keyid',
    ...(alternativeNames.length > 0 ? [`subjectAltName = ${alternativeNames.join(',')}`] : []),
  ]));
  // A subject's / and , would break openssl's -subj syntax; the names used here have neither.
  const subject = [...(request.organizations ?? []).map((o) => `/O=${o}`), `/CN=${request.commonName}`].join('');
  await runOk('openssl', [
    'req', '-new', '-key', paths.key, '-subj', subject,
    '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
    '-days', '3650', '-config', config, '-extensions', 'ext', '-out', paths.cert,
  ]);
  return paths;
}

/** Creates every certificate the node uses in `dir`. */
export async function createNodePki(dir: string, options: { bridgeIp: string; kubernetesServiceIp: string; nodeName: string }): Promise<NodePki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createCa(dir);
  const client = (file: string, commonName: string, organizations: string[] = []): Promise<CertPaths> =>
    issue(dir, ca, { file, commonName, organizations, usage: 'clientAuth' });
  const [apiserver, apiserverKubeletClient, kubeletServing, admin, kubelet, controllerManager, scheduler, kubeProxy, coredns] = await Promise.all([
    issue(dir, ca, {
      file: 'apiserver',
      commonName: 'kube-apiserver',
      usage: 'serverAuth',
      ips: [options.bridgeIp, '127.0.0.1', options.kubernetesServiceIp],
      dnsNames: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'],
    }),
    client('apiserver-kubelet-client', 'kube-apiserver-kubelet-client', ['system:masters']),
    issue(dir, ca, { file: 'kubelet-serving', commonName: `system:node:${options.nodeName}`, organizations: ['system:nodes'], usage: 'serverAuth', ips: [options.bridgeIp], dnsNames: [options.nodeName] }),
    client('admin', 'admin', ['system:masters']),
    client('kubelet', `system:node:${options.nodeName}`, ['system:nodes']),
    client('controller-manager', 'system:kube-controller-manager'),
    client('scheduler', 'system:kube-scheduler'),
    client('kube-proxy', 'system:kube-proxy'),
    client('coredns', 'system:coredns'),
  ]);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const serviceAccount = { privateKey: path.join(dir, 'sa.key'), publicKey: path.join(dir, 'sa.pub') };
  writeFileSync(serviceAccount.privateKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(serviceAccount.publicKey, publicKey.export({ type: 'spki', format: 'pem' }));
  return { ca, apiserver, apiserverKubeletClient, kubeletServing, admin, kubelet, controllerManager, scheduler, kubeProxy, coredns, serviceAccount };
}

/** A kubeconfig with the CA and the client certificate embedded, so it can be copied anywhere. */
export function kubeconfigYaml(server: string, ca: string, client: CertPaths, user: string): string {
  const b64 = (file: string): string => readFileSync(file).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: etcd-robustness-node',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(ca)}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate-data: ${b64(client.cert)}`,
    `    client-key-data: ${b64(client.key)}`,
    'contexts:',
    '- name: etcd-robustness-node',
    '  context:',
    '    cluster: etcd-robustness-node',
    `    user: ${user}`,
    'current-context: etcd-robustness-node',
    '',
  ].join('\n');
}
