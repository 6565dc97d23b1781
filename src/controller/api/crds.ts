/**
 * The CustomResourceDefinitions of EtcdCluster and RobustnessRun (apiextensions.k8s.io/v1), built from
 * the schemas declared in src/api. `npm run generate:crds` (scripts/generate-crds.ts) writes them to crds/;
 * test/unit/crd-drift.test.ts fails when the files differ from what this module renders.
 */
import { stringify } from 'yaml';
import { etcdClusterKind, etcdClusterPlural } from '../../domain/cluster-spec.ts';
import type { EtcdCluster } from '../../domain/cluster-spec.ts';
import { robustnessRunKind, robustnessRunPlural } from '../../domain/run-resource.ts';
import type { RobustnessRunResource } from '../../domain/run-resource.ts';
import { robustnessGroup, robustnessVersion } from '../../domain/run-spec.ts';
import type { JSONSchemaProps } from '../../api/index.ts';
import { etcdClusterSchema, robustnessRunSchema } from '../../api/index.ts';

/** Dotted paths into T (objects only, a few levels deep), for printer columns and subresources. */
type Paths<T, Depth extends unknown[] = []> = Depth['length'] extends 4
  ? never
  : T extends readonly unknown[]
    ? never
    : T extends object
      ? { [K in keyof T & string]-?: `.${K}` | `.${K}${Paths<Exclude<T[K], undefined>, [...Depth, unknown]>}` }[keyof T & string]
      : never;

export interface PrinterColumn<T> {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  /** Checked against the resource's type. */
  jsonPath: Paths<T>;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced';
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    versions: {
      name: string;
      served: true;
      storage: true;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources: { status: Record<string, never>; scale?: { specReplicasPath: string; statusReplicasPath: string } };
      additionalPrinterColumns: PrinterColumn<unknown>[];
    }[];
  };
}

const categories = ['etcd-robustness'];

function crd<T>(fields: {
  kind: string;
  plural: string;
  shortName: string;
  schema: JSONSchemaProps;
  columns: PrinterColumn<T>[];
  scale?: { specReplicasPath: Paths<T>; statusReplicasPath: Paths<T> };
}): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${fields.plural}.${robustnessGroup}` },
    spec: {
      group: robustnessGroup,
      scope: 'Namespaced',
      names: {
        kind: fields.kind,
        listKind: `${fields.kind}List`,
        plural: fields.plural,
        singular: fields.kind.toLowerCase(),
        shortNames: [fields.shortName],
        categories,
      },
      versions: [
        {
          name: robustnessVersion,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: fields.schema },
          subresources: { status: {}, ...(fields.scale === undefined ? {} : { scale: fields.scale }) },
          additionalPrinterColumns: fields.columns as PrinterColumn<unknown>[],
        },
      ],
    },
  };
}

export function etcdClusterCrd(): CustomResourceDefinition {
  return crd<EtcdCluster>({
    kind: etcdClusterKind,
    plural: etcdClusterPlural,
    shortName: 'etcdc',
    schema: etcdClusterSchema,
    columns: [
      { name: 'Version', type: 'string', jsonPath: '.spec.version', description: 'etcd version' },
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', description: 'Members wanted' },
      { name: 'Ready', type: 'integer', jsonPath: '.status.readyMembers', description: 'Healthy members' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Leader', type: 'string', jsonPath: '.status.leader' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    // kubectl scale and autoscalers; the enum still allows only 1, 3 and 5.
    scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.readyMembers' },
  });
}

export function robustnessRunCrd(): CustomResourceDefinition {
  return crd<RobustnessRunResource>({
    kind: robustnessRunKind,
    plural: robustnessRunPlural,
    shortName: 'rrun',
    schema: robustnessRunSchema,
    columns: [
      { name: 'Cluster', type: 'string', jsonPath: '.spec.clusterRef.name', description: 'The EtcdCluster driven' },
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule.kind', description: 'once, cron or continuous' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Verdict', type: 'string', jsonPath: '.status.verdict' },
      { name: 'Ops', type: 'integer', jsonPath: '.status.operations.ok', description: 'Operations that succeeded' },
      { name: 'Faults', type: 'integer', jsonPath: '.status.faults.injected', description: 'Faults injected' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });
}

/** Both CRDs, for installing them (the operator, `etcd-robustness dev`, tests). */
export function customResourceDefinitions(): CustomResourceDefinition[] {
  return [etcdClusterCrd(), robustnessRunCrd()];
}

/** controller-gen's file naming: `<group>_<plural>.yaml`. */
export function crdFileName(definition: CustomResourceDefinition): string {
  return `${definition.spec.group}_${definition.spec.names.plural}.yaml`;
}

export const crdHeader = '# generated by npm run generate:crds from src/api; do not edit\n';

/** The text of a CRD's file in crds/. */
export function renderCrd(definition: CustomResourceDefinition): string {
  return `${crdHeader}${stringify(definition, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}

/** The files of crds/, by name (the CRD README is written by hand). */
export function crdFiles(): { fileName: string; content: string }[] {
  return customResourceDefinitions().map((definition) => ({ fileName: crdFileName(definition), content: renderCrd(definition) }));
}
