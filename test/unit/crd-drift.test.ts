// The CRDs against everything they must agree with: the files in crds/ (generated), the manifest parser
// (fields, defaults, bounds, patterns), the samples, the etcd version built here, and the domain types (the
// expected compile errors at the end fail typechecking if the builder stops catching drift).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseAllDocuments, stringify } from 'yaml';
import { cronPattern, defaultEtcdVersion, durationPattern, enumOf, etcdClusterSchema, quantityPattern, robustnessRunSchema } from '../../src/api/index.ts';
import type { JSONSchemaProps, ObjectSchema } from '../../src/api/index.ts';
import { crdFiles, customResourceDefinitions } from '../../src/controller/api/index.ts';
import { etcdOperationKinds } from '../../src/domain/run-spec.ts';
import { faultCatalog } from '../../src/faults/catalog.ts';
import { ManifestError, parseRobustnessRun } from '../../src/run/manifest.ts';

const repo = new URL('../../', import.meta.url);

// ---------------------------------------------------------------------------------------------------
// A tiny structural-schema walker: OpenAPI validation (not CEL: the integration test has the real API
// server for that) and defaulting, as the API server does them.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function validate(value: unknown, schema: JSONSchemaProps, path: string): string[] {
  const problems: string[] = [];
  const fail = (problem: string): void => {
    problems.push(`${path}: ${problem}`);
  };
  if (schema.enum !== undefined && !schema.enum.includes(value)) fail(`${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  switch (schema.type) {
    case 'object': {
      if (!isObject(value)) return [`${path}: must be an object`];
      for (const name of schema.required ?? []) if (!(name in value)) fail(`${name} is required`);
      for (const [name, field] of Object.entries(value)) {
        const property = schema.properties?.[name] ?? schema.additionalProperties;
        // metadata is `type: object` alone: the API server's ObjectMeta, not ours to check.
        const opaque = schema['x-kubernetes-preserve-unknown-fields'] === true || (schema.properties === undefined && schema.additionalProperties === undefined);
        if (property !== undefined) problems.push(...validate(field, property, `${path}.${name}`));
        else if (!opaque) fail(`unknown field ${name}`);
      }
      if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties) fail('too many properties');
      break;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${path}: must be an array`];
      if (schema.maxItems !== undefined && value.length > schema.maxItems) fail('too many items');
      if (schema.minItems !== undefined && value.length < schema.minItems) fail('too few items');
      value.forEach((item, i) => problems.push(...validate(item, schema.items!, `${path}[${i}]`)));
      break;
    case 'string':
      if (typeof value !== 'string') return [`${path}: must be a string, got ${JSON.stringify(value)}`];
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) fail(`${JSON.stringify(value)} does not match ${schema.pattern}`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) fail('too long');
      if (schema.minLength !== undefined && value.length < schema.minLength) fail('too short');
      break;
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || (schema.type === 'integer' && !Number.isInteger(value))) return [`${path}: must be a ${schema.type}`];
      if (schema.minimum !== undefined && (schema.exclusiveMinimum === true ? value <= schema.minimum : value < schema.minimum)) fail(`${value} below the minimum`);
      if (schema.maximum !== undefined && (schema.exclusiveMaximum === true ? value >= schema.maximum : value > schema.maximum)) fail(`${value} above the maximum`);
      break;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail('must be a boolean');
      break;
    default:
      if (schema['x-kubernetes-preserve-unknown-fields'] !== true) fail('a schema without a type');
  }
  return problems;
}

/** Structural defaulting: a default for each absent property, then the defaults inside it. */
function withDefaults(value: Json, schema: JSONSchemaProps): Json {
  if (isObject(value) && schema.properties !== undefined) {
    const result: Record<string, Json> = { ...value };
    for (const [name, property] of Object.entries(schema.properties)) {
      if (!(name in result) && property.default !== undefined) result[name] = structuredClone(property.default) as Json;
      if (name in result) result[name] = withDefaults(result[name]!, property);
    }
    return result;
  }
  if (Array.isArray(value) && schema.items !== undefined) return value.map((item) => withDefaults(item, schema.items!));
  return value;
}

function at(schema: JSONSchemaProps, path: string): JSONSchemaProps {
  let node = schema;
  for (const part of path.split('.')) {
    const name = part.replace(/\[\]$/, '');
    node = node.properties?.[name] ?? assert.fail(`no ${name} in the schema (${path})`);
    if (part.endsWith('[]')) node = node.items ?? assert.fail(`${path} is not a list`);
  }
  return node;
}

const spec = (schema: JSONSchemaProps): JSONSchemaProps => schema.properties!.spec!;

function readManifests(file: URL): Json[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => doc.toJS() as Json);
}

function parseRun(manifest: Json, file = 'run.yaml'): ReturnType<typeof parseRobustnessRun> {
  return parseRobustnessRun(stringify(manifest), { file, defaultMode: 'exclusive' });
}

function problemsOf(manifest: Json): string[] {
  try {
    parseRun(manifest);
    return [];
  } catch (error) {
    if (error instanceof ManifestError) return error.issues.map((i) => `${i.path}: ${i.problem}`);
    throw error;
  }
}

const run = (specValue: Json): Json => ({ apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'RobustnessRun', metadata: { name: 'drift' }, spec: specValue });

// ---------------------------------------------------------------------------------------------------

describe('crds/ is what the generator writes', () => {
  test('every generated file is in crds/, byte for byte, and crds/ holds no other CRD', () => {
    const dir = new URL('crds/', repo);
    const files = crdFiles();
    for (const { fileName, content } of files) {
      let written = '';
      try {
        written = readFileSync(new URL(fileName, dir), 'utf8');
      } catch {
        assert.fail(`crds/${fileName} is missing: run npm run generate:crds`);
      }
      assert.ok(written === content, `crds/${fileName} differs from src/controller/api: run npm run generate:crds`);
    }
    const yamls = readdirSync(dir).filter((name) => name.endsWith('.yaml')).sort();
    assert.deepEqual(yamls, files.map((f) => f.fileName).sort(), 'crds/ holds a file the generator does not write: run npm run generate:crds');
    assert.match(files[0]!.content, /^# generated by npm run generate:crds/);
  });

  test('customResourceDefinitions() is both CRDs, with status subresources, short names and the category', () => {
    const crds = customResourceDefinitions();
    assert.deepEqual(crds.map((c) => c.metadata.name), ['etcdclusters.etcd.robustness.io', 'robustnessruns.etcd.robustness.io']);
    assert.deepEqual(crds.map((c) => c.spec.names.shortNames), [['etcdc'], ['rrun']]);
    for (const crd of crds) {
      assert.deepEqual(crd.spec.names.categories, ['etcd-robustness']);
      assert.deepEqual(crd.spec.versions[0]!.subresources.status, {});
    }
    assert.deepEqual(crds[0]!.spec.versions[0]!.subresources.scale, { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.readyMembers' });
  });

  test('the default etcd version is the one test/bin builds', () => {
    const goMod = readFileSync(new URL('test/bin/etcd-v3.6/go.mod', repo), 'utf8');
    const built = /go\.etcd\.io\/etcd\/server\/v3 v(\S+)/.exec(goMod)?.[1];
    assert.equal(defaultEtcdVersion, built);
    assert.equal(at(spec(etcdClusterSchema), 'version').default, built);
  });

  test('status has a real schema, not x-kubernetes-preserve-unknown-fields', () => {
    for (const schema of [etcdClusterSchema, robustnessRunSchema]) {
      const status = schema.properties!.status!;
      assert.equal(status['x-kubernetes-preserve-unknown-fields'], undefined);
      assert.ok(Object.keys(status.properties ?? {}).length > 5);
    }
    // No field is kept as written: the upgrade gate's run template has the RobustnessRun's own schema.
    const opaque: string[] = [];
    const walk = (node: JSONSchemaProps, path: string): void => {
      if (node['x-kubernetes-preserve-unknown-fields'] === true) opaque.push(path);
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
      if (node.items !== undefined) walk(node.items, `${path}[]`);
    };
    walk(etcdClusterSchema, '');
    walk(robustnessRunSchema, '');
    assert.deepEqual(opaque, []);
  });
});

describe('the RobustnessRun CRD and the manifest parser', () => {
  test('each mapping of the CRD is a section of the parser with the same fields (it reads them from the schema)', () => {
    // Weights narrow to the profile's kinds and params to the fault's: tested in manifest.test.ts.
    const narrowed = new Set(['spec.traffic.weights', 'spec.faults.choices[].params']);
    const sections: { path: string; node: JSONSchemaProps }[] = [];
    const walk = (node: JSONSchemaProps, path: string): void => {
      if (node.properties !== undefined && !narrowed.has(path)) sections.push({ path, node });
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
      if (node.items !== undefined) walk(node.items, `${path}[]`);
    };
    walk(spec(robustnessRunSchema), 'spec');
    assert.ok(sections.length >= 15, `${sections.length} sections`);
    /** A spec holding `inner` at `path` (a list item is the only item; a fault choice names its fault). */
    const nest = (parts: string[], inner: Json): Json => {
      const [first, ...rest] = parts;
      if (first === undefined) return inner;
      if (first.endsWith('[]')) return { [first.slice(0, -2)]: [{ fault: 'kill', ...(nest(rest, inner) as Record<string, Json>) }] };
      return { [first]: nest(rest, inner) };
    };
    for (const { path, node } of sections) {
      const parts = path.split('.').slice(1);
      const manifest = (inner: Json): string => stringify({ apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'RobustnessRun', metadata: { name: 'r' }, spec: nest(parts, inner) });
      const where = path.replaceAll('[]', '[0]');
      assert.throws(
        () => parseRobustnessRun(manifest({ zzNotAField: true }), { defaultMode: 'exclusive' }),
        (error: unknown) => error instanceof ManifestError && error.issues.some((i) => i.path === `${where}.zzNotAField` && i.problem.startsWith('unknown field')),
        `${path}: a field the CRD does not have is refused`,
      );
      for (const name of Object.keys(node.properties ?? {})) {
        const problems = (() => {
          try {
            parseRobustnessRun(manifest({ [name]: null }), { defaultMode: 'exclusive' });
            return [];
          } catch (error) {
            if (!(error instanceof ManifestError)) throw error;
            return error.issues.filter((i) => i.path === `${where}.${name}` && i.problem.startsWith('unknown field'));
          }
        })();
        assert.deepEqual(problems, [], `${path}.${name}: a field of the CRD is a field of the parser`);
      }
    }
  });

  test('the CRD\'s defaults are the parser\'s: a manifest with them filled in parses to the same run', () => {
    const manifests: Json[] = [
      run({}),
      run({ traffic: {}, watch: {}, checks: {}, faults: {}, schedule: {} }),
      run({ traffic: { qps: {}, clients: {}, compaction: {}, defragment: {} }, faults: { choices: [{ fault: 'kill' }, { fault: 'partition' }], interval: {}, duration: {} } }),
      run({ traffic: { profile: 'kubernetes', clients: { perMember: 0 } }, checks: { watch: false }, schedule: { kind: 'continuous', window: '5m' } }),
      run({ mode: 'shared', traffic: { compaction: {} }, faults: { enabled: false }, selfTest: { staleReads: {} } }),
    ];
    for (const dir of ['config/samples/', 'examples/bug-14370/']) {
      for (const file of readdirSync(new URL(dir, repo)).filter((f) => f.endsWith('.yaml'))) {
        manifests.push(...readManifests(new URL(`${dir}${file}`, repo)).filter((m) => isObject(m) && m.kind === 'RobustnessRun'));
      }
    }
    for (const manifest of manifests) {
      const seeded = { ...(manifest as Record<string, Json>), spec: { seed: 7, ...((manifest as { spec: Record<string, Json> }).spec) } };
      const defaulted = withDefaults(seeded, robustnessRunSchema);
      assert.deepEqual(parseRun(defaulted).spec, parseRun(seeded).spec, stringify(seeded));
    }
  });

  test('numeric bounds: the CRD\'s minimum and maximum are the parser\'s', () => {
    // Fields that only make sense beside another one.
    const context = (path: string): Record<string, Json> => {
      const param = /^spec\.faults\.choices\[\]\.params\.(\w+)$/.exec(path)?.[1];
      if (param !== undefined) return { faults: { choices: [{ fault: faultCatalog.find((d) => Object.hasOwn(d.params, param))!.name }] } };
      const kind = /^spec\.traffic\.weights\.(\w+)$/.exec(path)?.[1];
      if (kind !== undefined && !(etcdOperationKinds as readonly string[]).includes(kind)) return { traffic: { profile: 'kubernetes' } };
      if (path.startsWith('spec.faults.choices[].')) return { faults: { choices: [{ fault: 'kill' }] } };
      return {};
    };
    const set = (target: Record<string, Json>, parts: string[], value: Json): void => {
      const [head, ...rest] = parts;
      const name = head!.replace(/\[\]$/, '');
      if (rest.length === 0) {
        target[name] = value;
        return;
      }
      if (head!.endsWith('[]')) {
        const list = (target[name] ??= [{}]) as Record<string, Json>[];
        set(list[0]!, rest, value);
      } else {
        set((target[name] ??= {}) as Record<string, Json>, rest, value);
      }
    };
    const checked: string[] = [];
    const walk = (node: JSONSchemaProps, path: string): void => {
      if ((node.type === 'integer' || node.type === 'number') && node.enum === undefined) {
        const attempt = (value: number): string[] => {
          const specValue = context(path);
          set(specValue, path.split('.').slice(1), value);
          return problemsOf(run(specValue));
        };
        const step = node.type === 'integer' ? 1 : 0.001;
        if (node.minimum !== undefined) {
          const lowest = node.exclusiveMinimum === true ? node.minimum + step : node.minimum;
          assert.deepEqual(attempt(lowest), [], `${path} = ${lowest} passes the CRD, so the parser must take it`);
          assert.notDeepEqual(attempt(lowest - step), [], `${path} = ${lowest - step}: the CRD refuses it, the parser too`);
        }
        if (node.maximum !== undefined) {
          assert.deepEqual(attempt(node.maximum), [], `${path} = ${node.maximum}`);
          assert.notDeepEqual(attempt(node.maximum + step), [], `${path} = ${node.maximum + step}`);
        }
        checked.push(path);
      }
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
      if (node.items !== undefined) walk(node.items, `${path}[]`);
    };
    walk(spec(robustnessRunSchema), 'spec');
    assert.ok(checked.includes('spec.seed') && checked.includes('spec.traffic.qps.target') && checked.includes('spec.faults.choices[].params.percent'), checked.join());
  });

  test('duration bounds: the CRD\'s CEL bounds are the parser\'s', () => {
    const checked: string[] = [];
    const ms = (text: string): number => (/^(\d+)ms$/.exec(text) ? Number(text.slice(0, -2)) : Number.NaN);
    const walk = (node: JSONSchemaProps, path: string): void => {
      if (node.pattern === durationPattern && path !== 'spec.timeout') {
        const rule = node['x-kubernetes-validations']?.[0]?.rule ?? '';
        const min = /duration\(self\) >= duration\('([^']+)'\)/.exec(rule)?.[1];
        const max = /duration\(self\) <= duration\('([^']+)'\)/.exec(rule)?.[1];
        assert.ok(min !== undefined, `${path} has no lower bound`);
        const specValue: Record<string, Json> = path.startsWith('spec.schedule.window') ? { schedule: { kind: 'continuous' } } : {};
        const attempt = (value: string): string[] => {
          const copy = structuredClone(specValue);
          let target = copy;
          const parts = path.split('.').slice(1);
          for (const part of parts.slice(0, -1)) target = (target[part] ??= {}) as Record<string, Json>;
          target[parts.at(-1)!] = value;
          return problemsOf(run(copy));
        };
        const toMs = (text: string): number => parseRobustnessRun(stringify(run({ schedule: { kind: 'continuous', window: text } })), { defaultMode: 'exclusive' }).spec.schedule.windowMs!;
        const minMs = Number.isNaN(ms(min)) ? toMs(min) : ms(min);
        assert.deepEqual(attempt(`${minMs}ms`), [], `${path} = ${min}`);
        if (minMs > 0) assert.notDeepEqual(attempt(`${minMs - 1}ms`), [], `${path} = ${minMs - 1}ms`);
        if (max !== undefined) {
          const maxMs = toMs(max);
          assert.deepEqual(attempt(`${maxMs}ms`), [], `${path} = ${max}`);
          assert.notDeepEqual(attempt(`${maxMs + 1}ms`), [], `${path} = ${maxMs + 1}ms`);
        }
        checked.push(path);
      }
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
      if (node.items !== undefined) walk(node.items, `${path}[]`);
    };
    walk(spec(robustnessRunSchema), 'spec');
    assert.equal(checked.length, 13, checked.join());
  });

  test('every duration the CRD\'s pattern admits, the parser reads as the same whole milliseconds Go does', () => {
    const pattern = new RegExp(durationPattern);
    const digits = (max: number): fc.Arbitrary<string> => fc.integer({ min: 1, max }).chain((n) => fc.stringMatching(new RegExp(`^[0-9]{${n}}$`)));
    const part = fc.oneof(
      fc.tuple(fc.nat(100_000), fc.constant('ms')).map(([n, u]) => `${n}${u}`),
      fc.tuple(fc.nat(10_000), fc.option(digits(3)), fc.constant('s')).map(([n, f, u]) => `${n}${f === null ? '' : `.${f}`}${u}`),
      fc.tuple(fc.nat(1000), fc.option(digits(4)), fc.constant('m')).map(([n, f, u]) => `${n}${f === null ? '' : `.${f}`}${u}`),
      fc.tuple(fc.nat(100), fc.option(digits(5)), fc.constant('h')).map(([n, f, u]) => `${n}${f === null ? '' : `.${f}`}${u}`),
    );
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const text = parts.join('');
        assert.ok(pattern.test(text), text);
        // Whole milliseconds by exact decimal arithmetic (BigInt nanoseconds, as Go counts them).
        const nanos = parts.reduce((sum, p) => {
          const [, whole, fraction = '', unit] = /^(\d+)(?:\.(\d+))?(ms|s|m|h)$/.exec(p)!;
          const unitNanos = { ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n }[unit as 'ms' | 's' | 'm' | 'h'];
          const scale = 10n ** BigInt(fraction.length);
          return sum + (BigInt(whole!) * scale + BigInt(fraction === '' ? '0' : fraction)) * unitNanos / scale;
        }, 0n);
        assert.equal(nanos % 1_000_000n, 0n, `${text} is not whole milliseconds`);
        if (nanos === 0n) return;
        const windowMs = parseRun(run({ schedule: { kind: 'continuous', window: text } })).spec.schedule.windowMs;
        assert.equal(windowMs, Number(nanos / 1_000_000n), text);
      }),
      { numRuns: 1000 },
    );
    for (const refused of ['30', '1.5ms', '0.0001s', '1d', '-1s', ' 1s', '1s ', '1.s', '.5s', '']) assert.ok(!pattern.test(refused), refused);
  });

  test('cron: the pattern and the parser accept the same expressions, and croner can run every one', () => {
    const pattern = new RegExp(cronPattern);
    const cron = (expression: string): string[] => problemsOf(run({ schedule: { kind: 'cron', cron: expression } }));
    const value = (min: number, max: number, names: readonly string[] = []): fc.Arbitrary<string> =>
      fc.oneof(fc.integer({ min, max }).map(String), ...(names.length === 0 ? [] : [fc.constantFrom(...names)]));
    const field = (min: number, max: number, names: readonly string[] = []): fc.Arbitrary<string> => {
      const step = fc.integer({ min: 1, max: max === 59 ? 60 : max === 23 ? 24 : max }).map((n) => `/${n}`);
      const item = fc.oneof(
        fc.constant('*'),
        step.map((s) => `*${s}`),
        value(min, max, names),
        fc.tuple(fc.integer({ min, max }), fc.integer({ min, max }), fc.option(step)).map(([a, b, s]) => `${Math.min(a, b)}-${Math.max(a, b)}${s ?? ''}`),
      );
      return fc.array(item, { minLength: 1, maxLength: 3 }).map((items) => items.join(','));
    };
    const months = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC', 'jan', 'dec'];
    const days = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'sun', 'sat'];
    // Day 1-28 so every generated expression fires in every month.
    const expression = fc
      .tuple(field(0, 59), field(0, 23), field(1, 28), field(1, 12, months), field(0, 7, days))
      .map((fields) => fields.join(' '));
    fc.assert(
      fc.property(expression, (text) => {
        assert.ok(pattern.test(text), `the pattern refuses ${text}`);
        assert.deepEqual(cron(text), [], text);
      }),
      { numRuns: 500 },
    );
    // What the pattern refuses, the parser refuses.
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.array(fc.constantFrom('*', '0', '7', '59', '61', '/', '-', ',', ' ', 'L', '?', 'MON', '1-5', '*/5', '24'), { maxLength: 12 }), (random, pieces) => {
        for (const text of [random, pieces.join('')]) {
          if (!pattern.test(text)) assert.notDeepEqual(cron(text), [], text);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('quantity pattern: storage sizes and resource amounts', () => {
    const pattern = new RegExp(quantityPattern);
    for (const ok of ['1Gi', '500Mi', '10G', '250m', '1', '1.5Gi', '1e3', '.5']) assert.ok(pattern.test(ok), ok);
    for (const bad of ['1GB', '-1Gi', 'Gi', '1 Gi', '', '1gi']) assert.ok(!pattern.test(bad), bad);
  });
});

describe('config/samples against the CRDs', () => {
  const dir = new URL('config/samples/', repo);
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  for (const file of files) {
    test(`${file}: valid under the schema's types, enums, bounds and patterns (and the parser, for a RobustnessRun)`, () => {
      const manifests = readManifests(new URL(file, dir)).filter((m) => isObject(m) && (m.kind === 'EtcdCluster' || m.kind === 'RobustnessRun'));
      for (const manifest of manifests) {
        const object = manifest as { kind: string };
        const schema = object.kind === 'EtcdCluster' ? etcdClusterSchema : robustnessRunSchema;
        assert.deepEqual(validate(withDefaults(manifest, schema), schema, file), []);
        if (object.kind === 'RobustnessRun') parseRobustnessRun(readFileSync(new URL(file, dir), 'utf8'), { file, defaultMode: 'shared' });
      }
    });
  }

  test('the samples hold at least one EtcdCluster and one RobustnessRun', () => {
    const kinds = files.flatMap((file) => readManifests(new URL(file, dir)).map((m) => (isObject(m) && typeof m.kind === 'string' ? m.kind : '')));
    assert.ok(kinds.includes('EtcdCluster') && kinds.includes('RobustnessRun'), kinds.join());
  });

  test('the walker catches what it should (a check of the check)', () => {
    const bad = { apiVersion: 'x', kind: 'EtcdCluster', metadata: {}, spec: { replicas: 4, storage: { size: '1GB' }, extra: true } };
    assert.deepEqual(validate(withDefaults(bad, etcdClusterSchema), etcdClusterSchema, 'bad'), [
      'bad.spec.replicas: 4 not in [1,2,3,5]',
      `bad.spec.storage.size: "1GB" does not match ${quantityPattern}`,
      'bad.spec: unknown field extra',
    ]);
  });
});

describe('the typed schema builder catches drift at compile time', () => {
  interface Sample {
    name: string;
    size?: number;
    mode: 'a' | 'b';
    tags?: string[];
  }
  const name = { type: 'string' } as const;
  const size = { type: 'integer' } as const;
  const tags = { type: 'array', items: { type: 'string' }, maxItems: 4 } as const;

  test('a schema that matches its type compiles (and the broken ones below are compile errors)', () => {
    const ok: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: enumOf(['a', 'b'], { default: 'a' }), tags }, required: ['name', 'mode'] };
    assert.deepEqual(ok.required, ['name', 'mode']);

    // @ts-expect-error a field of the type has no schema: Property 'tags' is missing
    const missing: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: enumOf(['a', 'b']) } };
    // @ts-expect-error the schema has a field the type does not: 'colour' does not exist in type
    const extra: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: enumOf(['a', 'b']), tags, colour: name } };
    // @ts-expect-error a field's schema of the wrong type: a string schema for a number
    const retyped: ObjectSchema<Sample> = { type: 'object', properties: { name, size: name, mode: enumOf(['a', 'b']), tags } };
    // @ts-expect-error an optional field listed as required
    const required: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: enumOf(['a', 'b']), tags }, required: ['size'] };
    // @ts-expect-error an enum that misses a value of the type
    const fewer: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: enumOf(['a']), tags } };
    // @ts-expect-error an enum with a value the type does not have
    const more: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: enumOf(['a', 'b', 'c']), tags } };
    // @ts-expect-error a default outside the type
    const badDefault: ObjectSchema<Sample> = { type: 'object', properties: { name, size, mode: { ...enumOf(['a', 'b']), default: 'c' }, tags } };
    assert.ok([missing, extra, retyped, required, fewer, more, badDefault].every((schema) => schema.type === 'object'));
  });
});
