// etcd-launcher: the entrypoint of a member Pod's etcd container (see main.go). Standard library
// only; the Dockerfile and test/bin/build.sh build it, and the operator's image carries it.
module etcd-robustness-operator/tools/etcd-launcher

go 1.26.0
