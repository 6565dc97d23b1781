// image-build: writes OCI image tarballs reproducibly, without a container engine (see main.go);
// test/bin/build-images.sh builds it into .cache/bin/ and drives it.
module etcd-robustness-operator/tools/image-build

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
