// Certificates made at test time, never committed: a CA and the certificates it signs, in a temporary
// folder that close() removes. Keys are P-256 from Node's crypto; the certificates are issued by the
// openssl CLI (Node's crypto cannot issue them), which must be on PATH: a missing openssl fails loudly.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface CertificateRequest {
  commonName: string;
  /** Both for a peer certificate: etcd's peers present it as servers and as clients. */
  usage: 'serverAuth' | 'clientAuth' | 'serverAuth,clientAuth';
  ips?: readonly string[];
  dnsNames?: readonly string[];
}

function openssl(args: string[]): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error) throw new Error(`openssl is needed to make the test certificates: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed (exit ${result.status}): ${result.stderr}`);
}

function writeKey(file: string): void {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

/** The request's (empty) name section and the certificate's extensions, as openssl reads them. */
const opensslConfig = (extensions: string[]): string => ['[req]', 'distinguished_name = dn', '[dn]', '[ext]', ...extensions, ''].join('\n');

export class TestCa {
  readonly dir: string;
  readonly caFile: string;
  private readonly keyFile: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.caFile = path.join(dir, 'ca.crt');
    this.keyFile = path.join(dir, 'ca.key');
  }

  /** A self-signed CA valid for a day, in a new temporary folder. */
  static create(commonName = 'etcd-robustness-test-ca'): TestCa {
    const ca = new TestCa(mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-tls-')));
    try {
      writeKey(ca.keyFile);
      const config = path.join(ca.dir, 'ca.cnf');
      writeFileSync(config, opensslConfig(['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign,digitalSignature', 'subjectKeyIdentifier = hash']));
      openssl(['req', '-new', '-x509', '-key', ca.keyFile, '-subj', `/CN=${commonName}`, '-days', '1', '-config', config, '-extensions', 'ext', '-out', ca.caFile]);
    } catch (error) {
      ca.close();
      throw error;
    }
    return ca;
  }

  get ca(): Buffer {
    return readFileSync(this.caFile);
  }

  /** A certificate signed by this CA, as `<name>.crt` and `<name>.key` in its folder. */
  issue(name: string, request: CertificateRequest): IssuedCertificate {
    const certFile = path.join(this.dir, `${name}.crt`);
    const keyFile = path.join(this.dir, `${name}.key`);
    const csrFile = path.join(this.dir, `${name}.csr`);
    const config = path.join(this.dir, `${name}.cnf`);
    writeKey(keyFile);
    const alternativeNames = [...(request.ips ?? []).map((ip) => `IP:${ip}`), ...(request.dnsNames ?? []).map((dns) => `DNS:${dns}`)];
    writeFileSync(
      config,
      opensslConfig([
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage = ${request.usage}`,
        'authorityKeyIdentifier = keyid',
        ...(alternativeNames.length > 0 ? [`subjectAltName = ${alternativeNames.join(',')}`] : []),
      ]),
    );
    openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${request.commonName}`, '-config', config, '-out', csrFile]);
    openssl([
      'x509', '-req', '-in', csrFile, '-CA', this.caFile, '-CAkey', this.keyFile,
      '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '1', '-extfile', config, '-extensions', 'ext', '-out', certFile,
    ]);
    return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
  }

  /** Removes the folder with every key in it. */
  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
