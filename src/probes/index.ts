// Traffic probes that drive and record etcd operations (the probes issue fills this folder).
export {};
