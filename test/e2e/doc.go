// Package e2e holds the host end-to-end tests of the GreenBoost Container
// Toolkit (DESIGN.md §6): real runc, crun, dockerd, podman (CDI), containerd
// with ctr and nerdctl (the shim) driven through bin/greenboost-runtime,
// bin/greenboost-hook and bin/containerd-shim-greenboost-v2, with a stand-in
// device node and a fixture preload library, plus the security regressions,
// runtime-tools' OCI validation suite against runc and through the wrapper
// (TestOCIConformance; built once from the Go module proxy into
// /var/cache/greenboost-test), the wrapper benchmark (TestBench, DESIGN.md
// §8) and the deb/rpm packages
// (TestPackage: built with `make package`, installed and purged with dpkg
// and dkms in a mount namespace with overlays on /etc, /usr and /var).
//
// The tests carry the build tag e2e and need root, runc, crun, dockerd,
// podman, containerd, busybox-static and gcc (Debian 12: `make deps`); nerdctl
// v1.7.7 is built once from the Go module proxy and cached under
// /var/cache/greenboost-test. TestPodman writes the CDI spec to the real
// /var/run/cdi (Podman 4.3 reads no other dir) and restores what was there.
// Run them after `make build`:
//
//	go test -tags e2e -count=1 -v ./test/e2e/...
//
// The kernel module is not involved: the config they write says
// [kmod] load = "never" and [limits] enforce = false, so the hook records the
// budgets and warns that they are not enforced. Where the host's cgroup layout
// is hybrid with controllers on cgroup2 (which crun refuses), the tests mount
// those controllers as cgroup v1 hierarchies under /sys/fs/cgroup (on Debian
// 12's hybrid layout: hugetlb) and leave them there, as the host fix crun
// needs; unmounting would strand the controller once an engine has made
// cgroups in it.
package e2e
