// The operator's CustomResourceDefinitions, built from the schemas declared in src/api.
export { crdFileName, crdFiles, crdHeader, customResourceDefinitions, etcdClusterCrd, renderCrd, robustnessRunCrd } from './crds.ts';
export type { CustomResourceDefinition, PrinterColumn } from './crds.ts';
