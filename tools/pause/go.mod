// pause: the test node's sandbox image (see main.go); standard library only. test/bin/build-images.sh
// builds it into .cache/bin/ and packs it into the pause image.
module etcd-robustness-operator/tools/pause

go 1.26.0
