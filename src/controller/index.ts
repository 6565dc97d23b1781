// The Kubernetes controllers for EtcdCluster and RobustnessRun (the operator issue fills this folder).
export {};
