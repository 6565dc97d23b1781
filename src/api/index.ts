// The API of the custom resources, declared once: the OpenAPI schemas of EtcdCluster and RobustnessRun
// (typed against src/domain), from which come the CRDs (src/controller/api) and the manifest reader's
// rules (src/run/manifest-rules.ts).
export { etcdClusterSchema, etcdClusterSpecSchema, etcdClusterStatusSchema, defaultEtcdVersion } from './cluster-schema.ts';
export { metadataSchema, robustnessRunSchema, robustnessRunSpecSchema, robustnessRunStatusSchema, runnerSchema, nodeSelectorSchema } from './run-schema.ts';
export type { RobustnessRunCrdSpec } from './run-schema.ts';
export { cronFieldPattern, cronFields, cronMessage, cronPattern } from './cron.ts';
export { conditionSchema, durationPattern, quantity, quantityPattern, valueNote } from './schema-kit.ts';
export type { ValueNote } from './schema-kit.ts';
export { enumOf } from './openapi.ts';
export type { BooleanSchema, JSONSchemaProps, NumberSchema, ObjectSchema, SchemaOf, StringSchema, ValidationRule } from './openapi.ts';
