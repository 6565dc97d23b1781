// The test node: a real single-node Kubernetes cluster on this machine (test and dev infrastructure; the
// product's own API calls live in src/controller).
export { KubeNode } from './kube-node.ts';
export type { KubeNodeOptions } from './kube-node.ts';
export { NodeBusyError, NodeCleanupError, NodeStartError } from './errors.ts';
export { ImageImportError, ImagesNotBuiltError, imageNamed, imagesManifestPath, readImagesManifest } from './images.ts';
export type { ImageFile, ImagesManifest } from './images.ts';
export { bridgePrefix, kubernetesServiceIp, nodeStateRoot, serviceCidr } from './layout.ts';
export type { NodeNetwork } from './layout.ts';
export { nodeName } from './components.ts';
export { storageClassName } from './storage.ts';
export type { PvPool } from './storage.ts';
export { nodeLeftovers } from './teardown.ts';
