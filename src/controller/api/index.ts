// The API of the operator's custom resources: the CRDs (typed against src/domain) and their schemas.
export { crdFileName, crdFiles, crdHeader, customResourceDefinitions, etcdClusterCrd, renderCrd, robustnessRunCrd } from './crds.ts';
export type { CustomResourceDefinition, PrinterColumn } from './crds.ts';
export {
  conditionSchema,
  defaultEtcdVersion,
  durationPattern,
  etcdClusterSchema,
  etcdClusterSpecSchema,
  etcdClusterStatusSchema,
  quantityPattern,
  robustnessRunSchema,
  robustnessRunSpecSchema,
  robustnessRunStatusSchema,
} from './schema.ts';
export type { RobustnessRunCrdSpec } from './schema.ts';
export { enumOf } from './openapi.ts';
export type { JSONSchemaProps, ObjectSchema, SchemaOf, ValidationRule } from './openapi.ts';
